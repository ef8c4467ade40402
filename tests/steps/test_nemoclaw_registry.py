"""NemoClaw's registry as NemoClaw keeps it (docs/reference/nemoclaw-registry.md): every root
read, each entry tied to its file and gateway; a row rewritten in its own file with only our
fields changed; a write that loses the race with another program retried; the identity
fingerprint; pinned image references. Real files, a real second process."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.adapters import nemoclaw_registry as reg
from orchestrator.adapters.nemoclaw_registry import (
    IdentityMismatch,
    RegistryBusy,
    RegistryError,
    check_identity,
    fingerprint_of,
    pinned_digest,
    read_all,
    update_agent_version,
)
from tests.support.forked import fork_call

DIGEST = "sha256:" + "ab" * 32


def _row(name: str, **extra) -> dict:
    return {"name": name, "model": "m", "provider": "p", "gpuEnabled": False, "policies": ["pypi"], "agent": "openclaw",
            "agentVersion": "2026.1.1", "nimContainer": None, **extra}


def _write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.fixture
def nc(tmp_path) -> Path:
    d = tmp_path / ".nemoclaw"
    d.mkdir()
    return d


def test_every_root_is_read_and_each_entry_knows_its_file_and_gateway(nc):
    default = _write(nc / "sandboxes.json", {"sandboxes": {"alpha": _row("alpha")}, "defaultSandbox": "alpha"})
    p9000 = _write(nc / "gateways" / "9000" / "sandboxes.json",
                   {"sandboxes": {"gamma": _row("gamma", gatewayName="nemoclaw-9000", gatewayPort=9000)}})
    p8081 = _write(nc / "gateways" / "8081" / "sandboxes.json", {"sandboxes": {"beta": _row("beta")}})
    (nc / "gateways" / "notaport").mkdir()
    (nc / "gateways" / "7000").mkdir()  # a port directory without a registry: nothing there
    entries = read_all(nc)
    assert [(e.name, e.registry, e.gateway_port, e.gateway_name) for e in entries] == [
        ("alpha", str(default), None, None), ("beta", str(p8081), 8081, None), ("gamma", str(p9000), 9000, "nemoclaw-9000")]


def test_a_row_whose_name_differs_from_its_key_is_kept_with_its_problem(nc):
    path = _write(nc / "sandboxes.json", {"sandboxes": {"alpha": _row("beta"), "gamma": _row("gamma")}})
    bad, good = read_all(nc)
    assert (bad.name, good.name, good.problem) == ("alpha", "gamma", None)
    assert bad.problem == (f"its registry entry 'alpha' in {path} names sandbox 'beta'; make the key and its \"name\" "
                           "the same (the sandbox's name in OpenShell) and rerun")


def test_the_same_name_in_two_roots_is_a_duplicate_naming_both_files(nc):
    a = _write(nc / "sandboxes.json", {"sandboxes": {"alpha": _row("alpha")}})
    b = _write(nc / "gateways" / "8081" / "sandboxes.json", {"sandboxes": {"alpha": _row("alpha")}})
    assert reg.duplicate_names(read_all(nc)) == {"alpha": [f"'alpha' in {a}", f"'alpha' in {b}"]}


def test_a_registry_that_is_not_the_registry_shape_names_its_file(nc):
    path = _write(nc / "gateways" / "8081" / "sandboxes.json", {"sandboxes": []})
    with pytest.raises(RegistryError, match="Cannot read the sandbox registry .*8081/sandboxes.json: \"sandboxes\" must"):
        read_all(nc)
    assert path.exists()


def test_a_write_changes_only_our_field_in_the_file_the_row_came_from(nc):
    default = _write(nc / "sandboxes.json", {"sandboxes": {"alpha": _row("alpha")}})
    doc = {"version": 3, "sandboxes": {"beta": _row("beta", lifecycleLiveIdentityFingerprint="0" * 64, lifecycleGeneration=4,
                                                    stopped=True, futureField={"nested": [1, 2.5, None]}),
                                       "delta": _row("delta")},
           "defaultSandbox": "beta", "someFutureKey": {"x": "ü"}}
    port = _write(nc / "gateways" / "8081" / "sandboxes.json", doc)
    os.chmod(port, 0o640)
    before_default = default.read_bytes()
    beta = next(e for e in read_all(nc) if e.name == "beta")
    assert update_agent_version(beta, "2026.9.9", nemoclaw_dir=nc) is True
    after = json.loads(port.read_text())
    expected = json.loads(json.dumps(doc))
    expected["sandboxes"]["beta"]["agentVersion"] = "2026.9.9"
    assert after == expected
    assert list(after) == list(doc) and list(after["sandboxes"]["beta"]) == list(doc["sandboxes"]["beta"])  # order kept
    assert default.read_bytes() == before_default  # the other root is untouched
    assert os.stat(port).st_mode & 0o777 == 0o640
    assert update_agent_version(beta, "2026.9.9", nemoclaw_dir=nc) is False  # the same value again: no write


def _rewrite_in_another_process(path: Path, key: str, field: str, value: str) -> None:
    code = ("import json, sys, os\n"
            "p, k, f, v = sys.argv[1:]\n"
            "d = json.load(open(p))\n"
            "d['sandboxes'][k][f] = v\n"
            "open(p + '.x', 'w').write(json.dumps(d))\n"
            "os.replace(p + '.x', p)\n")
    subprocess.run([sys.executable, "-c", code, str(path), key, field, value], check=True)


def test_another_writer_between_our_read_and_our_write_keeps_both_changes(nc, monkeypatch):
    path = _write(nc / "sandboxes.json", {"sandboxes": {"alpha": _row("alpha"), "beta": _row("beta")}})
    calls: list[int] = []

    def upstream_writes_first(p: Path) -> None:
        calls.append(1)
        if len(calls) == 1:  # NemoClaw records beta's stop while we are updating alpha
            _rewrite_in_another_process(p, "beta", "stopped", "yes")

    monkeypatch.setattr(reg, "between_read_and_write", upstream_writes_first)
    alpha = read_all(nc)[0]
    assert update_agent_version(alpha, "2026.9.9", nemoclaw_dir=nc)
    doc = json.loads(path.read_text())
    assert doc["sandboxes"]["alpha"]["agentVersion"] == "2026.9.9"
    assert doc["sandboxes"]["beta"]["stopped"] == "yes"
    assert len(calls) == 2  # the first swap lost and was retried on the new content


def test_a_registry_that_never_stops_changing_is_not_written_and_says_so(nc, monkeypatch):
    path = _write(nc / "sandboxes.json", {"sandboxes": {"alpha": _row("alpha")}})
    n = iter(range(1000))
    monkeypatch.setattr(reg, "between_read_and_write",
                        lambda p: p.write_text(json.dumps({"sandboxes": {"alpha": _row("alpha", tick=next(n))}})))
    with pytest.raises(RegistryBusy, match=f"The sandbox registry {path} was changed by another program 20 times"):
        update_agent_version(read_all(nc)[0], "2026.9.9", nemoclaw_dir=nc)
    assert json.loads(path.read_text())["sandboxes"]["alpha"]["agentVersion"] == "2026.1.1"


def test_a_write_killed_before_its_rename_leaves_the_old_file_and_the_next_write_finishes(nc, tmp_path):
    path = _write(nc / "sandboxes.json", {"sandboxes": {"alpha": _row("alpha", keep="me")}})
    before = path.read_bytes()
    marker = tmp_path / "paused"

    def child() -> None:
        reg.between_read_and_write = lambda p: (marker.write_text("x"), time.sleep(60))
        update_agent_version(read_all(nc)[0], "2026.9.9", nemoclaw_dir=nc)

    proc = fork_call(child)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    assert proc.wait(30) == -signal.SIGKILL
    assert path.read_bytes() == before
    assert update_agent_version(read_all(nc)[0], "2026.9.9", nemoclaw_dir=nc)
    assert json.loads(path.read_text())["sandboxes"]["alpha"] == _row("alpha", keep="me") | {"agentVersion": "2026.9.9"}


def test_the_fingerprint_is_the_sha256_of_the_openshell_id_and_a_mismatch_names_both():
    live = "0f6c2d8e-5f1b-4e0b-9a57-3c1d2b7e9a10"
    assert fingerprint_of(live) == hashlib.sha256(live.encode()).hexdigest()
    entry = reg.SandboxEntry("alpha", "openclaw", None, fingerprint=fingerprint_of("old-id"))
    check_identity(reg.SandboxEntry("alpha", "openclaw", None), live)  # none recorded: nothing to check
    check_identity(attrs_evolve(entry, fingerprint=fingerprint_of(live)), live)
    with pytest.raises(IdentityMismatch) as info:
        check_identity(entry, live)
    assert fingerprint_of("old-id") in str(info.value) and live in str(info.value)
    assert "nothing of it was changed" in str(info.value)


def test_a_fingerprint_that_is_not_a_sha256_is_that_rows_problem(nc):
    _write(nc / "sandboxes.json", {"sandboxes": {"alpha": _row("alpha", lifecycleLiveIdentityFingerprint="ABC")}})
    [e] = read_all(nc)
    assert e.fingerprint is None and "is not a lower-case hex SHA-256" in (e.problem or "")


def test_pinned_references_are_repository_at_sha256_digest(nc):
    assert pinned_digest(f"ghcr.io/nvidia/nemoclaw/openclaw@{DIGEST}") == ("ghcr.io/nvidia/nemoclaw/openclaw", DIGEST)
    assert pinned_digest(f"localhost:5000/x/y@{DIGEST}") == ("localhost:5000/x/y", DIGEST)
    for not_pinned in (None, "", "openclaw:2026.5.22", "openclaw@sha256:abc", f"@{DIGEST}", f"a:1@{DIGEST} "):
        assert pinned_digest(not_pinned) is None, not_pinned
    _write(nc / "sandboxes.json", {"sandboxes": {"alpha": _row("alpha", fromImage=f"repo/x@{DIGEST}")}})
    assert read_all(nc)[0].image == f"repo/x@{DIGEST}"


def attrs_evolve(entry, **changes):
    import attrs

    return attrs.evolve(entry, **changes)
