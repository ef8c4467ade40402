"""The single-writer lock, against real second processes (forked children: tests/support/forked.py)."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from orchestrator.store import LockHeld, WriterLock, read_lock
from tests.support.forked import Forked, fork_call


def _hold(path: Path, run_id: str) -> None:
    """In a forked child: take the lock (or say who holds it and exit with its code), hold it
    until stdin closes or says so."""
    lock = WriterLock(path, run_id)
    try:
        lock.acquire()
    except LockHeld as exc:
        print("held", exc, flush=True)
        sys.exit(exc.exit_code)
    print("won", flush=True)
    sys.stdin.readline()  # hold until the parent says so
    lock.release()


def _holder(path: Path, run_id: str) -> Forked:
    return fork_call(_hold, path, run_id)


def test_live_lock_refuses_second_holder_with_exit_75(tmp_path):
    path = tmp_path / ".nemoclaw" / "orchestrator.lock"
    child = _holder(path, "run-first")
    try:
        assert child.stdout.readline().strip() == "won"
        with pytest.raises(LockHeld) as info:
            WriterLock(path, "run-second").acquire()
        msg = str(info.value)
        assert info.value.exit_code == 75
        assert f"pid {child.pid}" in msg and "run run-first" in msg and socket.gethostname() in msg
        holder = read_lock(path)
        assert holder is not None and holder.pid == child.pid and holder.run_id == "run-first"
        assert holder.started_at in msg
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    finally:
        child.stdin.close()
        child.wait()
    assert not path.exists()


def test_second_process_exits_75_while_we_hold(tmp_path):
    path = tmp_path / "orchestrator.lock"
    with WriterLock(path, "ours") as lock:
        assert lock.held and lock.broken is None
        child = _holder(path, "theirs")
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 75
        assert out.startswith("held") and f"pid {os.getpid()}" in out and "run ours" in out
    assert not path.exists()


def test_exactly_one_of_several_racing_processes_wins(tmp_path):
    path = tmp_path / "orchestrator.lock"
    children = [_holder(path, f"racer-{i}") for i in range(4)]
    try:
        results = [c.stdout.readline().split()[0] for c in children]
    finally:
        for c in children:
            c.stdin.close()
            c.wait()
    assert sorted(results) == ["held", "held", "held", "won"]


def test_dead_holder_is_broken_with_a_message(tmp_path):
    path = tmp_path / "orchestrator.lock"
    child = _holder(path, "run-dead")
    assert child.stdout.readline().strip() == "won"
    child.kill()
    child.wait()
    assert path.exists()  # a SIGKILLed holder leaves its lock file behind
    with WriterLock(path, "run-new") as lock:
        assert lock.broken is not None
        assert lock.broken.message == f"  Broke stale lock of run run-dead (pid {child.pid} is gone)."
        assert read_lock(path).run_id == "run-new"


def test_recycled_pid_is_not_mistaken_for_the_holder(tmp_path):
    """The recorded pid is alive (it is ours) but its start time differs: a different process."""
    path = tmp_path / "orchestrator.lock"
    path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "run_id": "old",
                                "started_at": "2026-01-01T00:00:00.000Z", "proc_start": 1}))
    with WriterLock(path, "new") as lock:
        assert lock.broken is not None and lock.broken.previous.run_id == "old"


def test_other_host_lock_is_respected(tmp_path):
    path = tmp_path / "orchestrator.lock"
    path.write_text(json.dumps({"pid": 1, "host": "some-other-host", "run_id": "remote",
                                "started_at": "2026-01-01T00:00:00.000Z"}))
    with pytest.raises(LockHeld, match="some-other-host"):
        WriterLock(path, "new").acquire()
    assert read_lock(path).run_id == "remote"


def test_corrupt_unheld_lock_is_broken(tmp_path):
    path = tmp_path / "orchestrator.lock"
    path.write_text("{garbage")
    with WriterLock(path, "new") as lock:
        assert lock.broken is not None and lock.broken.previous is None
        assert "Broke stale lock" in lock.broken.message


def test_release_removes_only_our_own_lock(tmp_path):
    path = tmp_path / "orchestrator.lock"
    lock = WriterLock(path, "ours").acquire()
    os.unlink(path)
    path.write_text(json.dumps({"pid": 1, "host": "h", "run_id": "someone-else", "started_at": "x"}))
    lock.release()
    assert read_lock(path).run_id == "someone-else"
    lock.release()  # idempotent
