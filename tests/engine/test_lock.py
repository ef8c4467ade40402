"""One writer at a time. The lock holder is a real `nemoclaw` process (a forked child running the
program's entry point: another pid, live or killed); the runs that meet its lock run in process."""

import json
import os
import socket
import subprocess
import time


def _wait_for(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists()


def test_live_lock_refuses_second_run_with_75(engine, program):
    first = program.fork("t-wait")
    try:
        _wait_for(engine.home / "staged.path")
        second = engine.run("t-commit")
        assert second.returncode == 75
        assert "Another nemoclaw run is in progress" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        # The refused run changed nothing.
        assert not (engine.home / ".nemoclaw" / "rebuild-backups" / "alpha").exists()
    finally:
        first.terminate()
        first.communicate(timeout=30)
    assert first.returncode == 143


def test_dead_lock_is_broken_with_a_message(engine):
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = engine.home / ".nemoclaw" / "orchestrator.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "run_id": "20260101T000000000Z-dead00",
                                "started_at": "2026-01-01T00:00:00Z"}))
    r = engine.run("t-commit")
    assert r.returncode == 0, r.stderr
    assert "Broke stale lock" in r.stdout
    assert not lock.exists()


def test_sweep_of_dead_runs_staging_is_announced(engine, program):
    first = program.fork("t-wait")
    _wait_for(engine.home / "staged.path")
    staged = engine.home.joinpath("staged.path").read_text()
    os.kill(first.pid, 9)  # no cleanup at all: staging and lock stay behind
    first.communicate(timeout=30)
    assert os.path.isdir(staged)
    r = engine.run("t-commit")
    assert r.returncode == 0, r.stderr
    assert "Removed leftovers of 1 interrupted run" in r.stdout
    assert not os.path.exists(staged)


def test_read_only_run_takes_no_lock_and_may_not_commit(engine, program):
    first = program.fork("t-wait")
    try:
        _wait_for(engine.home / "staged.path")
        looked = engine.run("t-look", check=True)
        assert looked.returncode == 0, looked.stderr  # beside a live writer: no lock needed
        assert "ok in t-look" in looked.stdout
        writer = engine.run("t-look")
        assert writer.returncode == 75  # the same workflow without --check is a writer
    finally:
        first.terminate()
        first.communicate(timeout=30)
    blocked = engine.run("t-look", check=True, empty=True)  # routes to the commit state
    assert blocked.returncode == 1
    assert "Refusing to run 't_stage_commit' (state 'commit'): this run is read-only (--check)." in blocked.stderr
    assert not (engine.home / ".nemoclaw" / "rebuild-backups" / "alpha").exists()
    written = engine.run("t-look", empty=True)
    assert written.returncode == 0, written.stderr
    assert (engine.home / ".nemoclaw" / "rebuild-backups" / "alpha").is_dir()
