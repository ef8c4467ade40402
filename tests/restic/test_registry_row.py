"""The registry row a backup records, and registering it again on a host that lost its registry
(docs/backups.md, "A dead host"): pure file logic, in process."""

from __future__ import annotations

import json
import os

import pytest

from orchestrator.adapters.nemoclaw_registry import entry_from_row, read_all, recorded_row, register_row
from orchestrator.kernel.errors import ManifestError
from orchestrator.store.manifest import manifest_from_dict, manifest_to_dict

from .helpers import TS1, files_of, make_backup

ROW = {"name": "alpha", "agent": "openclaw", "agentVersion": "2026.5.22", "policies": ["pypi"],
       "model": "m", "provider": "p", "someFutureField": {"kept": True}}


def test_a_row_is_recorded_with_its_file_and_registered_again_as_it_was(tmp_path):
    old = tmp_path / "old" / ".nemoclaw"
    (old / "gateways" / "8090").mkdir(parents=True)
    (old / "gateways" / "8090" / "sandboxes.json").write_text(json.dumps({"sandboxes": {"alpha": ROW}, "x": 1}))
    (entry,) = read_all(old)
    rel, row = recorded_row(entry, old)
    assert (rel, row) == ("gateways/8090/sandboxes.json", ROW)

    new = tmp_path / "new" / ".nemoclaw"
    assert entry_from_row(new, rel, "alpha", row).gateway_port == 8090
    assert register_row(new, rel, "alpha", row) is True
    path = new / rel
    assert json.loads(path.read_text()) == {"sandboxes": {"alpha": ROW}}
    assert os.stat(path).st_mode & 0o777 == 0o600
    # A row that is there already (NemoClaw wrote one meanwhile) is left as it is.
    assert register_row(new, rel, "alpha", {**ROW, "model": "other"}) is False
    assert json.loads(path.read_text())["sandboxes"]["alpha"]["model"] == "m"
    # Other rows and keys of an existing file are kept.
    register_row(new, rel, "beta", {**ROW, "name": "beta"})
    assert list(json.loads(path.read_text())["sandboxes"]) == ["alpha", "beta"]


def test_a_manifest_carries_the_row_and_refuses_a_file_outside_the_registry(tmp_path):
    backup = make_backup(tmp_path / "home", "alpha", TS1, files_of("row"))
    raw = json.loads((backup / "rebuild-manifest.json").read_text())
    with_row = {**raw, "registryFile": "sandboxes.json", "registryRow": ROW}
    m = manifest_from_dict(with_row)
    assert m.registry_row == ROW and manifest_to_dict(m)["registryRow"] == ROW
    assert "registryRow" not in manifest_to_dict(manifest_from_dict(raw))  # older manifests: no key
    for bad in ("../sandboxes.json", "/etc/passwd", "gateways/x/sandboxes.json", "gateways/8090/../../x.json"):
        with pytest.raises(ManifestError, match="invalid registry file"):
            manifest_from_dict({**with_row, "registryFile": bad})
    with pytest.raises(ManifestError, match="registry row names another sandbox"):
        manifest_from_dict({**with_row, "registryRow": {**ROW, "name": "beta"}})
