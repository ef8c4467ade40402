"""A `nemoclaw backups push` or `pull` killed outright (SIGKILL) is finished by the next run,
with nothing partial in the local store or passing for a copy in the repository.

The kill points (steps/_replication.py): `push:<sandbox>` stops restic mid-upload (its first
status line with bytes done) and waits; `pull:<sandbox>` waits after restic has restored into
staging, before the check and the commit. restic dies with us (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.support.cli import invoke
from tests.support.restic_repo import restic

from .helpers import TS1, backup_dirs, files_of, make_backup, popen, tree


def _wait_for(marker: Path, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before pausing: {proc.communicate()}")
        assert time.monotonic() < deadline, "never reached the kill point"
        time.sleep(0.05)


def _kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def _restic_gone(setup) -> None:
    """No restic of ours outlives the killed run (it would finish the snapshot behind our back)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    env = (Path("/proc") / pid / "environ").read_bytes()
                except OSError:
                    continue
                if str(setup.root).encode() in env and b"RESTIC_REPOSITORY=" in env:
                    alive.append(pid)
        if not alive:
            return
        time.sleep(0.1)
    raise AssertionError(f"restic still running: {alive}")


def test_a_push_killed_mid_upload_is_finished_by_the_next_push(local_repo, tmp_path):
    files = files_of("kill", n=8, size=4 * 1024 * 1024)  # 32 MiB: restic is still uploading at its first status
    src = make_backup(local_repo.home, "alpha", TS1, files)
    assert invoke("backups", "init-remote", env=local_repo.env()).returncode == 0
    marker = tmp_path / "paused"
    # restic reports progress 4 times a second by default (client.py), and 32 MiB can be stored in
    # less than that on an idle machine: at 60 a second its first status with bytes done comes
    # while the upload is under way.
    proc = popen("backups", "push", env={**os.environ, **local_repo.env(NEMOCLAW_TEST_PAUSE_AT="push:alpha",
                                                                          NEMOCLAW_TEST_PAUSE_MARKER=str(marker),
                                                                          RESTIC_PROGRESS_FPS="60")})
    _wait_for(marker, proc)
    _kill(proc)
    _restic_gone(local_repo)
    snaps = json.loads(restic(local_repo, "snapshots", "--json").stdout or "[]")
    assert snaps == []  # nothing passes for a copy
    out = invoke("backups", "push", env=local_repo.env())
    assert out.returncode == 0 and "Pushed 1, skipped 0" in out.stdout, (out.stdout, out.stderr)
    # The killed restic's lock does not stop a backup; `verify --remote` removes it (stale) and checks.
    verified = invoke("backups", "verify", "--remote", "--read-data-subset", "100%", env=local_repo.env())
    assert verified.returncode == 0, verified.stderr
    assert restic(local_repo, "check").returncode == 0
    other = tmp_path / "new-host"
    assert invoke("backups", "pull", "alpha", env=local_repo.env(HOME=str(other))).returncode == 0
    assert tree(other / ".nemoclaw" / "rebuild-backups" / "alpha" / TS1) == tree(src)


def test_a_pull_killed_before_its_commit_leaves_the_store_as_it_was_and_the_next_pull_finishes(local_repo, tmp_path):
    src = make_backup(local_repo.home, "alpha", TS1, files_of("pull-kill"))
    invoke("backups", "init-remote", env=local_repo.env())
    assert invoke("backups", "push", env=local_repo.env()).returncode == 0
    other = tmp_path / "new-host"
    marker = tmp_path / "paused"
    env = {**os.environ, **local_repo.env(HOME=str(other), NEMOCLAW_TEST_PAUSE_AT="pull:alpha",
                                          NEMOCLAW_TEST_PAUSE_MARKER=str(marker))}
    proc = popen("backups", "pull", "alpha", env=env)
    _wait_for(marker, proc)
    _kill(proc)
    assert backup_dirs(other, "alpha") == []  # restored into staging only
    staging = other / ".nemoclaw" / "rebuild-backups" / ".staging"
    assert [p.name for p in staging.iterdir()]  # the dead run's area is still there
    out = invoke("backups", "pull", "alpha", env=local_repo.env(HOME=str(other)))
    assert out.returncode == 0, out.stderr
    assert "Removed leftovers of 1 interrupted run" in out.stdout
    assert tree(other / ".nemoclaw" / "rebuild-backups" / "alpha" / TS1) == tree(src)
    assert list(staging.iterdir()) == []
    assert restic(local_repo, "check").returncode == 0
