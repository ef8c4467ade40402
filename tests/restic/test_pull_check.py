"""The check a pulled copy passes before its commit (steps/_replication.py, `_check_restored`):
the manifest is the one the snapshot was tagged with, and the one read pass finds any file that
differs from it. In process, on a backup made the way backup-all makes them."""

from __future__ import annotations

import os

from orchestrator.steps._replication import RemoteBackup, _check_restored, manifest_digest

from .helpers import TS1, files_of, make_backup


def _remote(backup) -> RemoteBackup:
    return RemoteBackup("alpha", TS1, manifest_digest(backup), "host-a", 0, "f" * 64, "ffffffff")


def test_an_intact_copy_passes_and_one_changed_byte_in_any_file_fails_it(tmp_path):
    backup = make_backup(tmp_path / "home", "alpha", TS1, files_of("check", n=6))
    remote = _remote(backup)
    assert _check_restored(backup, remote) is None
    victim = backup / "workspace" / "dir1" / "f3.bin"
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x80  # same size: only the hash can tell
    os.chmod(victim, 0o600)
    victim.write_bytes(bytes(data))
    problem = _check_restored(backup, remote)
    assert problem is not None and "workspace/dir1/f3.bin: sha256" in problem
    victim.unlink()
    assert "missing" in (_check_restored(backup, remote) or "")


def test_a_manifest_other_than_the_tagged_one_fails_the_copy(tmp_path):
    backup = make_backup(tmp_path / "home", "alpha", TS1, files_of("tag"))
    other = RemoteBackup("alpha", TS1, "0" * 64, "host-a", 0, "f" * 64, "ffffffff")
    assert _check_restored(backup, other) == "its manifest is not the one it was pushed with"
