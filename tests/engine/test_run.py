"""A workflow run ends in done, refused or failed, with the right streams and exit codes.

In process (`engine`: run_workflow with string streams); the interrupt needs a real process.
"""

import signal
import time
from pathlib import Path


def test_done_passes_options_and_logs_every_state(engine):
    r = engine.run("t-route", allow=True)
    assert r.returncode == 0, r.stderr
    assert "ok in t-route with [('allow', True), ('boom', False), ('empty', False)]" in r.stdout
    assert r.stderr == ""
    events = engine.events("t-route")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and events[0]["options"] == {"allow": True, "boom": False, "empty": False}
    assert [e["state"] for e in events if e["event"] == "state_entered"] == ["gate", "branch", "work"]
    assert all("duration_s" in e for e in events if e["event"] == "state_left")
    assert events[-1] == {**events[-1], "event": "run_finished", "terminal": "done", "exit_code": 0}
    assert r.result.terminal == "done" and r.result.run_id == events[0]["run"]


def test_named_branch_routes(engine):
    r = engine.run("t-route", allow=True, empty=True)
    assert r.returncode == 0
    assert "ok in" not in r.stdout
    assert [e["state"] for e in engine.events("t-route") if e["event"] == "state_entered"] == ["gate", "branch"]


def test_refusal_prints_diagnosis_on_stderr_and_exits_1(engine):
    r = engine.run("t-route")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.splitlines() == ["  Test refusal line one.", "  No sandbox data was changed."]
    end = engine.events("t-route")[-1]
    assert (end["terminal"], end["exit_code"], end["reason"]) == ("refused", 1, "test_refusal")


def test_exception_in_step_fails_without_traceback(engine):
    r = engine.run("t-boom")
    assert r.returncode == 1
    assert "Step 't_boom' (state 'explode') failed: RuntimeError: the step blew up" in r.stderr
    assert "Traceback" not in r.stderr
    assert engine.events("t-boom")[-1]["terminal"] == "failed"


def test_debug_shows_the_traceback(engine):
    r = engine.run("t-boom", debug=True)
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr
    assert "RuntimeError: the step blew up" in r.stderr


def test_step_error_exit_code_overrides_terminal(engine):
    r = engine.run("t-fatal")
    assert r.returncode == 2
    assert r.stderr.strip() == "Registry file is corrupt."
    # Not retryable: one attempt only, although the state allows five.
    assert (engine.home / "fatal.count").read_text() == "1"


def test_retry_succeeds_on_third_attempt(engine):
    r = engine.run("t-retry", env={"FLAKY_SUCCEEDS_AT": "3"})
    assert r.returncode == 0, r.stderr
    assert "flaky succeeded on attempt 3" in r.stdout
    assert "Retrying 'flaky' (attempt 2 of 3)" in r.stdout
    retries = [e for e in engine.events("t-retry") if e["event"] == "retry"]
    assert [e["attempt"] for e in retries] == [1, 2]


def test_retry_gives_up_after_attempts(engine):
    r = engine.run("t-retry", env={"FLAKY_SUCCEEDS_AT": "99"})
    assert r.returncode == 1
    assert (engine.home / "flaky.count").read_text() == "3"
    assert "not yet (attempt 3)" in r.stderr
    assert engine.events("t-retry")[-1]["terminal"] == "failed"


def test_ctrl_c_discards_staging_and_exits_130(engine, program):
    proc = program.fork("t-wait")
    marker = program.home / "staged.path"
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    staged = Path(marker.read_text())
    assert (staged / "alpha" / "data.txt").read_text() == "staged"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert not staged.exists()
    assert "nothing partial was committed" in err
    assert engine.events("t-wait")[-1]["terminal"] == "interrupted"


def test_commit_moves_staged_dirs_and_leaves_no_staging(engine):
    r = engine.run("t-commit")
    assert r.returncode == 0, r.stderr
    root = engine.home / ".nemoclaw" / "rebuild-backups"
    for name in ("alpha", "beta"):
        [committed] = list((root / name).iterdir())
        assert (committed / "file.txt").read_text() == name
    assert list((root / ".staging").iterdir()) == []


def test_a_fact_handle_reads_and_writes_as_the_name_does(engine):
    """`ctx.get(FACT)` / `ctx.set(FACT, v)` (typed handles) and `ctx.fact(name)` / `ctx.put(name, v)`
    are one contract: the same declared reads and writes, the same type check."""
    import io

    from orchestrator.engine.context import RunContext
    from orchestrator.engine.journal import Journal
    from orchestrator.engine.output import Reporter
    from orchestrator.engine.registry import get_step
    from orchestrator.kernel.errors import StepError
    from orchestrator.engine.loader import load_by_name
    from orchestrator.steps.facts import REGISTRY, SANDBOX_LIST, SandboxList
    import pytest

    ctx = RunContext(run_id="r", workflow=load_by_name("t-route", engine.paths), options={}, paths=engine.paths,
                     out=Reporter(stdout=io.StringIO(), stderr=io.StringIO()), journal=Journal(None, "r"))
    ctx.step_signature = get_step("sandbox_list").signature  # writes sandbox_list; may read cli_version
    listing = SandboxList(live=["a"], ready=["a"], phases={"a": "Ready"}, ids={"a": "1"}, format="json")
    ctx.set(SANDBOX_LIST, listing)
    assert ctx.get(SANDBOX_LIST) is listing and ctx.fact("sandbox_list") is listing
    assert ctx.written == {"sandbox_list": listing}
    with pytest.raises(StepError, match="step 'sandbox_list' writes fact 'registry' without declaring it"):
        ctx.set(REGISTRY, [])
    with pytest.raises(StepError, match="step 'sandbox_list' reads fact 'registry' without declaring it"):
        ctx.get(REGISTRY, None)
    with pytest.raises(StepError, match="fact 'sandbox_list'"):
        ctx.set(SANDBOX_LIST, "not a list")  # type: ignore[arg-type]
