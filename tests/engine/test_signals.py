"""SIGINT and SIGTERM are interruptions, not endings: a run stopped by one in a state that changes
the world is left interrupted (its journal has no end), exits 130 or 143, and the next mutating
run finishes it exactly as after a SIGKILL; one stopped before any such state ends `interrupted`
with nothing to finish. The signalled run is a real process (a forked child running the
program); the runs that follow are in process.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from orchestrator.engine.journal import read_journal, replay

from tests.support.cli import invoke

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
SIGNALS = [signal.SIGINT, signal.SIGTERM]


def _wait_for(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def _only_run(home):
    logs = sorted((home / ".nemoclaw" / "runs").glob("*.jsonl"))
    assert len(logs) == 1, logs
    return logs[0]


def _left_interrupted(engine, program, proc, signum, state):
    """The signalled run exited 128+signal, said what it left, and its journal has no end."""
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == CODES[signum], out + err
    log = _only_run(engine.home)
    run_id = log.stem
    name = signal.Signals(signum).name
    assert f"  Interrupted by {name}: run {run_id} (t-hold, stopped in state '{state}' at " in err, err
    assert "is left interrupted, not finished" in err
    events, damaged = read_journal(log)
    assert not damaged
    assert [e["event"] for e in events if e["event"] in ("run_finished", "run_abandoned")] == []
    assert events[-1]["event"] == "run_interrupted" and events[-1]["signal"] == name
    row = next(r for r in json.loads(invoke("runs", "list", "--json").stdout) if r["run"] == run_id)
    assert (row["status"], row["resumable"], row["stopped_in"]) == ("interrupted", True, state)
    return run_id


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_inside_a_world_changing_step_leaves_the_run_to_be_finished(engine, program, signum):
    (engine.home / "hold").touch()
    proc = program.fork("t-hold")
    _wait_for(engine.home / "held.pid")
    proc.send_signal(signum)
    run_id = _left_interrupted(engine, program, proc, signum, "hold")
    assert (engine.home / "marks").read_text().split() == ["first"]  # the held step did not end

    (engine.home / "hold").unlink()
    again = engine.run("t-commit")
    assert again.returncode == 0, again.stderr
    assert f"  Resuming interrupted run {run_id} (t-hold, stopped in state 'hold' at " in again.stdout
    assert (engine.home / "marks").read_text().split() == ["first", "held"]  # the mark is not done twice
    events, _ = read_journal(engine.home / ".nemoclaw" / "runs" / f"{run_id}.jsonl")
    assert replay(events, run_id).finished["exit_code"] == 0


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("point", ["mark:enter", "mark:leave", "hold:enter"])
def test_a_signal_at_a_state_boundary_leaves_the_run_to_be_finished(engine, program, signum, point):
    state, when = point.split(":")
    name = signal.Signals(signum).name
    proc = program.fork("t-hold", env={"NEMOCLAW_TEST_KILL_AT": f"t-hold:{state}:{when}::{name}"})
    stopped_in = "hold" if point == "mark:leave" else state
    run_id = _left_interrupted(engine, program, proc, signum, stopped_in)

    again = engine.run("t-commit")
    assert again.returncode == 0, again.stderr
    assert f"  Resuming interrupted run {run_id} (t-hold, stopped in state '{stopped_in}' at " in again.stdout
    expected = ["first", "held"]  # entered but not run: run on resume; left: not run again
    assert (engine.home / "marks").read_text().split() == expected


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_before_any_world_changing_state_ends_the_run_with_nothing_to_finish(engine, program, signum):
    name = signal.Signals(signum).name
    proc = program.fork("t-hold", env={"NEMOCLAW_TEST_KILL_AT": f"t-hold:look:leave::{name}"})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == CODES[signum], out + err
    assert "nothing partial was committed" in err
    events, _ = read_journal(_only_run(engine.home))
    assert events[-1]["event"] == "run_finished" and events[-1]["terminal"] == "interrupted"
    again = engine.run("t-commit")
    assert again.returncode == 0 and "Resuming" not in again.stdout
    assert not (engine.home / "marks").exists()


def test_a_signal_waits_for_the_end_of_a_critical_section():
    """A journal line is never cut in two: inside `critical()` the signal is held, and raised
    as the section ends."""
    from orchestrator.engine.signals import critical, handling

    reached_end = False
    with handling(), pytest.raises(KeyboardInterrupt):
        with critical():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler has run by now
            reached_end = True
    assert reached_end
    with handling(), pytest.raises(KeyboardInterrupt):  # outside a critical section: at once
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_in_a_foreach_child_resumes_that_child_then_runs_the_rest(engine, program, signum):
    """As upgrade-sandboxes runs one rebuild per sandbox: the first item is done, the second
    is signalled as its state starts; the next run finishes the second (not the first again)
    and runs the third."""
    name = signal.Signals(signum).name
    proc = program.fork("t-hold-each", env={"NEMOCLAW_TEST_KILL_AT": f"t-hold-item:hold:enter:2:{name}"})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == CODES[signum], out + err
    run_id = _only_run(engine.home).stem
    assert f"  Interrupted by {name}: run {run_id} (t-hold-item 'two', stopped in state 'hold' at " in err, err
    assert (engine.home / "marks").read_text().split() == ["held-one"]

    again = engine.run("t-commit")
    assert again.returncode == 0, again.stderr
    assert f"  Resuming interrupted run {run_id} (t-hold-item 'two', stopped in state 'hold' at " in again.stdout
    assert (engine.home / "marks").read_text().split() == ["held-one", "held-two", "held-three"]
