"""Manifest format, strict loading, verification, backup listing and pruning, agent definitions."""

from __future__ import annotations

import json
import os
import random
from datetime import datetime, timezone
from pathlib import Path

import pytest

from orchestrator.adapters.agents.definitions import agent_names, load_agent, load_agent_file
from orchestrator.store import (
    MANIFEST_NAME,
    BackupStore,
    FileRecord,
    Manifest,
    ManifestError,
    StateFile,
    load_manifest,
    new_timestamp,
    parse_timestamp,
    verify,
    write_manifest,
)
from orchestrator.store.errors import StoreError

from tests.support.backup_tree import extract_backup_files


def _manifest(**kw) -> Manifest:
    base = dict(
        version=1, sandbox_name="alpha", timestamp="2026-05-28T10-09-17-605Z", agent_type="openclaw",
        agent_version=None, expected_version="2026.5.22", state_dirs=["agents", "workspace"],
        backed_up_dirs=["agents"], state_files=[StateFile("SOUL.md", "copy")], dir="/sandbox/.openclaw",
        backup_path="/home/u/.nemoclaw/rebuild-backups/alpha/2026-05-28T10-09-17-605Z", blueprint_digest=None,
        policy_presets=["npm"],
    )
    base.update(kw)
    return Manifest(**base)


def _make_backup(root: Path, sandbox: str, ts: str, files: dict[str, bytes]) -> Path:
    """A real backup: files packed and extracted through the archive code, then a manifest."""
    dest, tops, res = extract_backup_files(root, sandbox, ts, files)
    write_manifest(dest, _manifest(sandbox_name=sandbox, timestamp=ts, backup_path=str(dest), files=res.files,
                                   dirs=res.dirs, symlinks=res.symlinks, state_dirs=tops, backed_up_dirs=tops,
                                   state_files=[]))
    return dest


def test_timestamp_matches_javascript_format():
    t = datetime(2026, 5, 28, 10, 9, 17, 605_999, tzinfo=timezone.utc)
    assert new_timestamp(t) == "2026-05-28T10-09-17-605Z"
    assert parse_timestamp("2026-05-28T10-09-17-605Z") == datetime(2026, 5, 28, 10, 9, 17, 605_000, tzinfo=timezone.utc)
    assert parse_timestamp(new_timestamp()) is not None
    assert parse_timestamp("2026-05-28T10:09:17.605Z") is None


def test_manifest_round_trip_format_and_mode(tmp_path):
    m = _manifest(files=[FileRecord("agents/a", 3, "a" * 64, 0o644)], name="before-upgrade")
    path = write_manifest(tmp_path, m)
    assert path == tmp_path / MANIFEST_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert text.startswith('{\n  "version": 1,\n  "sandboxName": "alpha",\n  "timestamp": ')
    data = json.loads(text)
    assert list(data)[:13] == ["version", "sandboxName", "timestamp", "agentType", "agentVersion", "expectedVersion",
                               "stateDirs", "backedUpDirs", "stateFiles", "dir", "backupPath", "blueprintDigest",
                               "policyPresets"]
    assert data["stateFiles"] == [{"path": "SOUL.md", "strategy": "copy"}]
    assert load_manifest(tmp_path) == m
    assert data["name"] == "before-upgrade"
    write_manifest(tmp_path, _manifest())
    assert "name" not in json.loads(path.read_text())  # optional: omitted when unset


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: d | {"version": "1"}, "manifest.version"),
        (lambda d: {k: v for k, v in d.items() if k != "sandboxName"}, "manifest.sandboxName"),
        (lambda d: d | {"surprise": 1}, "extra fields"),
        (lambda d: d | {"version": 2}, "unsupported manifest version"),
        (lambda d: d | {"timestamp": "yesterday"}, "invalid timestamp"),
        (lambda d: d | {"files": [{"path": "../x", "size": 1, "sha256": "a" * 64, "mode": 420}]}, "invalid path"),
        (lambda d: d | {"files": [{"path": "a", "size": 1, "sha256": "nothex", "mode": 420}]}, "invalid file record"),
        (lambda d: d | {"backedUpDirs": ["../../etc"]}, "invalid state directory"),
        (lambda d: [], "not a JSON object"),
    ],
)
def test_corrupt_manifest_is_a_clear_error_naming_the_file(tmp_path, mutate, expect):
    path = write_manifest(tmp_path, _manifest())
    bad = mutate(json.loads(path.read_text()))
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expect in str(info.value)


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="manifest file is missing"):
        load_manifest(tmp_path)


def test_verify_detects_flipped_byte_missing_extra_and_size(tmp_path):
    root = tmp_path / "backups"
    dest = _make_backup(root, "alpha", "2026-05-28T10-09-17-605Z",
                        {"agents/a": os.urandom(5000), "agents/sub/b": b"bbb", "agents/c": b""})
    m = load_manifest(dest)
    assert verify(dest, m) is None
    assert verify(dest, m, sample_pct=10, rng=random.Random(1)) is None

    target = dest / "agents" / "a"
    data = bytearray(target.read_bytes())
    data[1234] ^= 0x01
    target.write_bytes(bytes(data))
    mm = verify(dest, m)
    assert (mm.path, mm.kind) == ("agents/a", "sha256") and "SHA-256" in str(mm)
    target.write_bytes(bytes(data) + b"!")
    assert verify(dest, m).kind == "size"
    target.unlink()
    assert (verify(dest, m).path, verify(dest, m).kind) == ("agents/a", "missing")
    target.write_bytes(b"")
    (dest / "agents" / "intruder").write_text("x")
    assert verify(dest, m).path in ("agents/a", "agents/intruder")
    os.unlink(target)
    (dest / "agents" / "a").symlink_to("c")
    assert verify(dest, m).kind in ("extra", "type")


def test_listing_is_newest_first_and_ignores_non_backups(tmp_path):
    root = tmp_path / "rebuild-backups"
    _make_backup(root, "alpha", "2026-05-01T00-00-00-000Z", {"agents/a": b"1"})
    _make_backup(root, "alpha", "2026-05-03T00-00-00-000Z", {"agents/a": b"3"})
    _make_backup(root, "beta", "2026-05-02T00-00-00-000Z", {"agents/a": b"2"})
    (root / "alpha" / "2026-05-04T00-00-00-000Z").mkdir()  # NemoClaw's empty dir after an early failure
    (root / "alpha" / "2026-05-05T00-00-00-000Z").mkdir()
    (root / "alpha" / "2026-05-05T00-00-00-000Z" / MANIFEST_NAME).write_text("{")
    (root / ".staging" / "run" / "x").mkdir(parents=True)
    store = BackupStore(root, load_agent)
    listing = store.scan()
    assert [(b.sandbox, b.timestamp, b.label) for b in listing.backups] == [
        ("alpha", "2026-05-03T00-00-00-000Z", "v2"),
        ("beta", "2026-05-02T00-00-00-000Z", "v1"),
        ("alpha", "2026-05-01T00-00-00-000Z", "v1"),
    ]
    assert sorted(p.path.name for p in listing.invalid) == ["2026-05-04T00-00-00-000Z", "2026-05-05T00-00-00-000Z"]
    assert store.list("alpha")[0].timestamp == "2026-05-03T00-00-00-000Z"
    assert store.sandboxes() == ["alpha", "beta"]
    assert store.dest_for("alpha", "2026-06-01T00-00-00-000Z") == root / "alpha" / "2026-06-01T00-00-00-000Z"
    with pytest.raises(StoreError) as info:
        store.dest_for("../x", "2026-06-01T00-00-00-000Z")
    assert type(info.value) is StoreError
    assert str(info.value) == ("invalid sandbox name '../x': a backup directory name may use only letters, digits, "
                               "'.', '_' or '-', must not start with '.' and must be at most 201 characters")
    assert not (root.parent / "x").exists()


def test_prune_keeps_newest_verified_backup(tmp_path):
    root = tmp_path / "rebuild-backups"
    ts = [f"2026-05-0{i}T00-00-00-000Z" for i in range(1, 6)]
    for i, t in enumerate(ts):
        _make_backup(root, "alpha", t, {"agents/a": f"v{i}".encode() * 100})
    _make_backup(root, "beta", ts[0], {"agents/a": b"only"})
    # The two newest alpha backups are damaged: the newest verified one is ts[2].
    for t in ts[3:]:
        (root / "alpha" / t / "agents" / "a").write_bytes(b"X" * 200)
    store = BackupStore(root, load_agent)

    plan = store.prune(keep=1, dry_run=True)
    assert [b.timestamp for b in plan.removed if b.sandbox == "alpha"] == [ts[3], ts[1], ts[0]]
    assert [b.timestamp for b in plan.protected] == [ts[2]]
    assert [b.timestamp for b, _ in plan.failed_verify] == [ts[4], ts[3]]
    assert len(store.list()) == 6  # dry run removed nothing

    result = store.prune(keep=1)
    left = [(b.sandbox, b.timestamp) for b in store.list()]
    assert left == [("alpha", ts[4]), ("alpha", ts[2]), ("beta", ts[0])]
    assert sorted(os.listdir(root / "alpha")) == [ts[2], ts[4]]
    assert len(result.removed) == 3

    store.prune(keep=0)
    assert [(b.sandbox, b.timestamp) for b in store.list()] == [("alpha", ts[2]), ("beta", ts[0])]


# --- agents ------------------------------------------------------------------------------------


def test_packaged_agents_load():
    assert agent_names() == ["hermes", "openclaw"]
    oc = load_agent("openclaw")
    assert oc.dir == "/sandbox/.openclaw" and oc.expected_version == "2026.5.22"
    assert oc.state_dirs == ("agents", "extensions", "workspace", "skills", "hooks", "identity", "devices", "canvas",
                             "cron", "memory", "telegram", "wechat", "whatsapp", "credentials")
    assert oc.version_command == "openclaw --version"
    hermes = load_agent("hermes")
    assert hermes.dir == "/sandbox/.hermes" and hermes.state_dirs == ("memories", "sessions", "skills")
    assert [(f.path, f.strategy) for f in hermes.state_files] == [("SOUL.md", "copy"), ("runtime/state.db", "sqlite_backup")]
    with pytest.raises(ManifestError, match="unknown agent"):
        load_agent("nope")


@pytest.mark.parametrize(
    "text, expect",
    [
        ("name: x\ndir: /a\nstate_dirs: [a]\nbogus: 1\n", "extra fields"),
        ("name: x\ndir: /a\nstate_dirs: 5\n", "state_dirs"),
        ("name: x\ndir: relative\nstate_dirs: [a]\n", "absolute"),
        ("name: x\ndir: /a\nstate_dirs: ['../up']\n", "plain directory name"),
        ("name: x\ndir: /a\nstate_dirs: [a]\nstate_files: [{path: f, strategy: rsync}]\n", "strategy"),
        ("name: y\ndir: /a\nstate_dirs: [a]\n", "does not match"),
        ("name: x\ndir: /a\nstate_dirs: [a\n  b: c\n", "x.yaml:"),
    ],
)
def test_bad_agent_definition_is_a_clear_error(tmp_path, text, expect):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        load_agent_file(path)
    assert str(path) in str(info.value) and expect in str(info.value)


def test_the_manifest_bytes_are_json_dumps_indent_2_byte_for_byte():
    """manifest_bytes lays the records out with the C encoder (store/manifest.py `_records`);
    the file must stay exactly what `json.dumps(indent=2)` (JSON.stringify(x, null, 2)) writes."""
    import json

    from orchestrator.store.manifest import _pretty_json

    odd = {
        "a": [{"p": "x},\x00{y", "q": "}\n{", "r": None, "s": True}, {"p": "é\u2028\"\\\x01\x00", "z": -5}],
        "b": [{}, {"a": 1}], "c": [[{"x": 1}]], "d": [1, "a", None], "e": [{"n": {"m": 1}}],
        "f": {"g": [{"h": "i"}], "k": {}}, "l": [], "m": [{"only": "one"}], "n": False,
    }
    assert _pretty_json(odd) == json.dumps(odd, indent=2, ensure_ascii=False)
    assert _pretty_json({"x": 1.5}) is None and _pretty_json({1: 2}) is None  # the standard library's job
    from orchestrator.store.manifest import manifest_bytes, manifest_to_dict

    m = _manifest(files=[FileRecord("agents/a \"b\" é", 3, "a" * 64, 0o644), FileRecord("agents/c", 0, "b" * 64, 0o4755)],
                  name="n")
    assert manifest_bytes(m) == (json.dumps(manifest_to_dict(m), indent=2, ensure_ascii=False) + "\n").encode()
