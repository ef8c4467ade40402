"""A backup directory is untrusted input: hand-edited manifests, symlinked folders and wrong
clocks are reported as invalid backups, never used, never followed and never silently replaced
by an older backup (docs/backups.md, "What a valid backup is").

The `nemoclaw backups` commands run in process (click's runner) with HOME pointing at a scratch
directory; restore fails before it needs a sandbox, so no Docker engine is involved here.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from orchestrator.adapters.agents.definitions import load_agent
from orchestrator.store import MANIFEST_NAME, BackupStore, InvalidBackup, new_timestamp
from orchestrator.store.capture import Capture, build_manifest
from orchestrator.store.manifest import write_manifest

from tests.support.backup_tree import extract_backup_files
from tests.support.cli import Invoked, invoke

OLD, MID, NEW = "2026-05-01T00-00-00-000Z", "2026-05-02T00-00-00-000Z", "2026-05-03T00-00-00-000Z"
FILES = {"agents/main/s.jsonl": b"session\n", "workspace/SOUL.md": b"soul\n", "credentials/token": b"secret\n"}


def make_backup(root: Path, sandbox: str, ts: str, files: dict[str, bytes] = FILES) -> Path:
    """A backup as backup-all writes it: the tree through the archive code, the manifest from
    a Capture of the openclaw agent."""
    dest, tops, extracted = extract_backup_files(root, sandbox, ts, files)
    agent = load_agent("openclaw")
    cap = Capture(state_dirs=list(agent.state_dirs), backed_up_dirs=tops)
    cap.archive.merge(extracted)
    write_manifest(dest, build_manifest(cap, agent, sandbox=sandbox, timestamp=ts, backup_path=dest))
    return dest


def edit_manifest(backup: Path, edit) -> None:
    path = backup / MANIFEST_NAME
    doc = json.loads(path.read_text())
    new = edit(doc)
    path.write_text(new if isinstance(new, str) else json.dumps(new, indent=2))


def nemoclaw(home: Path, *args: str) -> Invoked:
    return invoke(*args, env={"HOME": str(home)})


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    (h / ".nemoclaw").mkdir(parents=True)
    return h


def root_of(home: Path) -> Path:
    return home / ".nemoclaw" / "rebuild-backups"


CORRUPTIONS = {
    "truncated": lambda d: json.dumps(d)[:100],
    "version-2": lambda d: d | {"version": 2},
    "unknown-key": lambda d: d | {"surprise": True},
    "dotdot-path": lambda d: d | {"files": [dict(d["files"][0], path="../../../etc/passwd")]},
    "dir-usr-local": lambda d: d | {"dir": "/usr/local", "stateDirs": d["stateDirs"] + ["bin"],
                                    "backedUpDirs": d["backedUpDirs"] + ["bin"]},
    "dir-tmp": lambda d: d | {"dir": "/tmp"},
    "credentials-not-backed-up": lambda d: d | {"backedUpDirs": [x for x in d["backedUpDirs"] if x != "credentials"]},
    "undeclared-state-file": lambda d: d | {"stateFiles": [{"path": "openclaw.json", "strategy": "copy"}]},
    "other-sandbox": lambda d: d | {"sandboxName": "beta"},
    "timestamp-not-dir-name": lambda d: d | {"timestamp": "2099-01-01T00-00-00-000Z"},
    "unknown-agent": lambda d: d | {"agentType": "nobody"},
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupt_newest_manifest_is_invalid_and_never_replaced_by_an_older_one(home, corruption):
    root = root_of(home)
    make_backup(root, "alpha", OLD)
    newest = make_backup(root, "alpha", NEW)
    edit_manifest(newest, CORRUPTIONS[corruption])

    listing = BackupStore(root, load_agent).scan("alpha")
    assert [b.timestamp for b in listing.backups] == [OLD]
    slot = listing.newest_slot("alpha")
    assert isinstance(slot, InvalidBackup) and slot.timestamp == NEW and slot.path == newest

    res = nemoclaw(home, "backups", "verify", "alpha")
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"  ✗ alpha {NEW}: invalid backup: " in res.stderr
    assert "✓" not in res.stdout  # the older backup is not verified in its place

    res = nemoclaw(home, "backups", "restore", "alpha")
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.splitlines()
    assert lines[0].startswith(f"  Refusing to restore 'alpha': its newest backup {NEW} is invalid: ")
    assert lines[1] == (f"  The newest valid backup is {OLD}; to restore it, run: "
                        f"nemoclaw backups restore alpha --from {OLD}")
    assert "Traceback" not in res.stderr

    res = nemoclaw(home, "backups", "restore", "alpha", "--from", NEW, "--dry-run")
    assert res.returncode == 1 and f"backup {NEW} is invalid" in res.stderr
    res = nemoclaw(home, "backups", "restore", "alpha", "--from", OLD, "--dry-run")
    assert res.returncode == 0 and f"Would restore {OLD}" in res.stdout


def test_symlink_targets_may_point_anywhere_but_links_must_lie_under_a_backed_up_dir(home, tmp_path):
    root = root_of(home)
    good = make_backup(root, "alpha", OLD)
    os.symlink("/usr/bin/python3", good / "workspace" / "python")  # an ordinary venv link
    os.symlink("../../../outside", good / "workspace" / "up")
    edit_manifest(good, lambda d: d | {"symlinks": [{"path": "workspace/python", "target": "/usr/bin/python3"},
                                                    {"path": "workspace/up", "target": "../../../outside"}]})
    [b] = BackupStore(root, load_agent).list("alpha")
    assert BackupStore(root, load_agent).verify(b) is None

    bad = make_backup(root, "alpha", NEW)
    os.symlink("/etc", bad / "elsewhere")
    edit_manifest(bad, lambda d: d | {"symlinks": [{"path": "elsewhere", "target": "/etc"}]})
    slot = BackupStore(root, load_agent).scan("alpha").newest_slot("alpha")
    assert isinstance(slot, InvalidBackup) and "symlink 'elsewhere' lies under none of the backed-up dirs" in slot.error


def test_symlinked_sandbox_folder_is_never_followed_by_any_command(home, tmp_path):
    root = root_of(home)
    outside = tmp_path / "precious"
    for ts in (OLD, MID, NEW):
        make_backup(outside, "alpha", ts)
    root.mkdir(parents=True)
    os.symlink(outside / "alpha", root / "alpha")
    before = sorted(p.name for p in (outside / "alpha").iterdir())

    for args in (["prune", "--keep", "1", "alpha"], ["list", "alpha"], ["verify", "alpha"], ["restore", "alpha"]):
        res = nemoclaw(home, "backups", *args)
        assert res.returncode != 0, (args, res.stdout)
        assert (f"Refusing to operate on path: {root / 'alpha'} is a symbolic link (target: {outside / 'alpha'}). "
                "This may indicate a symlink attack.") in res.stderr, args
        assert "Traceback" not in res.stderr
    res = nemoclaw(home, "backups", "prune", "--keep", "0")  # all sandboxes: the link is not a sandbox folder
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (outside / "alpha").iterdir()) == before  # nothing deleted outside the root
    listed = json.loads(nemoclaw(home, "backups", "list", "--json").stdout)
    assert listed["backups"] == [] and listed["invalid"][0]["path"] == str(root / "alpha")


def test_symlinked_backup_slot_and_backups_root_are_not_followed(home, tmp_path):
    root = root_of(home)
    make_backup(root, "alpha", OLD)
    elsewhere = make_backup(tmp_path / "other", "alpha", NEW)
    os.symlink(elsewhere, root / "alpha" / NEW)
    listing = BackupStore(root, load_agent).scan("alpha")
    assert [b.timestamp for b in listing.backups] == [OLD]
    slot = listing.newest_slot("alpha")
    assert isinstance(slot, InvalidBackup) and "is a symbolic link" in slot.error
    res = nemoclaw(home, "backups", "prune", "--keep", "0", "alpha")
    assert res.returncode == 0 and (elsewhere / MANIFEST_NAME).exists()

    moved = tmp_path / "moved-root"
    shutil.move(str(root), moved)
    os.symlink(moved, root)
    res = nemoclaw(home, "backups", "list")
    assert res.returncode == 2 and f"Refusing to operate on path: {root} is a symbolic link" in res.stderr


def test_a_future_dated_backup_is_not_newest_and_prune_keeps_the_fresh_ones(home):
    root = root_of(home)
    now = datetime.now(timezone.utc)
    fresh = [new_timestamp(now - timedelta(hours=h)) for h in (2, 1)]
    for ts in fresh:
        make_backup(root, "alpha", ts)
    future = new_timestamp(now + timedelta(days=400))  # a wrong clock at first boot
    make_backup(root, "alpha", future)
    edited = make_backup(root, "alpha", OLD)
    edit_manifest(edited, lambda d: d | {"timestamp": future})  # a hand-edited timestamp

    listing = BackupStore(root, load_agent).scan("alpha")
    assert [b.timestamp for b in listing.backups] == [fresh[1], fresh[0]]
    invalid = {i.timestamp: i.error for i in listing.invalid}
    assert "dated in the future" in invalid[future]
    assert "is not the directory's name" in invalid[OLD]

    res = nemoclaw(home, "backups", "prune", "--keep", "1", "alpha")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (root / "alpha").iterdir() if not p.name.startswith(".")) == sorted(
        [OLD, fresh[1], future])  # the older fresh one went; the invalid ones are never touched


def test_list_never_says_verified_for_what_it_did_not_hash(home):
    root = root_of(home)
    b = make_backup(root, "alpha", OLD, {f"workspace/f{i}": os.urandom(100) for i in range(50)})
    victim = b / "workspace" / "f17"
    data = bytearray(victim.read_bytes())
    data[3] ^= 1
    victim.write_bytes(bytes(data))  # same size, one bit flipped

    res = nemoclaw(home, "backups", "list")
    assert res.returncode == 0, res.stderr
    header, row = res.stdout.splitlines()[:2]
    assert header.split()[-1] == "CHECK" and row.split()[-2:] == ["sizes", "ok"]
    assert "verified" not in row.lower() and "yes" not in row.split()
    doc = json.loads(nemoclaw(home, "backups", "list", "--json").stdout)
    assert doc["backups"][0]["verified"] is None and doc["backups"][0]["check"] == "sizes"

    res = nemoclaw(home, "backups", "list", "--verify")
    assert res.stdout.splitlines()[1].split()[-1] == "DAMAGED"
    doc = json.loads(nemoclaw(home, "backups", "list", "--verify", "--json").stdout)
    assert doc["backups"][0]["verified"] is False and "workspace/f17" in doc["backups"][0]["problem"]
    victim.write_bytes(bytes(data[:3]) + bytes([data[3] ^ 1]) + bytes(data[4:]))
    doc = json.loads(nemoclaw(home, "backups", "list", "--verify", "--json").stdout)
    assert doc["backups"][0]["verified"] is True
