"""A workflow run ends in done, refused or failed, with the right streams and exit codes."""

import json
import signal
import time
from pathlib import Path


def _events(home: Path, workflow: str) -> list[dict]:
    logs = sorted((home / ".nemoclaw" / "runs").glob("*.jsonl"))
    for log in reversed(logs):
        events = [json.loads(line) for line in log.read_text().splitlines()]
        if events[0]["workflow"] == workflow:
            return events
    raise AssertionError(f"no run log for {workflow}")


def test_done_passes_options_and_logs_every_state(nemoclaw):
    r = nemoclaw.run("t-route", "--allow")
    assert r.returncode == 0, r.stderr
    assert "ok in t-route with [('allow', True), ('boom', False), ('empty', False)]" in r.stdout
    assert r.stderr == ""
    events = _events(nemoclaw.home, "t-route")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and events[0]["options"] == {"allow": True, "boom": False, "empty": False}
    assert [e["state"] for e in events if e["event"] == "state_entered"] == ["gate", "branch", "work"]
    assert all("duration_s" in e for e in events if e["event"] == "state_left")
    assert events[-1] == {**events[-1], "event": "run_finished", "terminal": "done", "exit_code": 0}


def test_named_branch_routes(nemoclaw):
    r = nemoclaw.run("t-route", "--allow", "--empty")
    assert r.returncode == 0
    assert "ok in" not in r.stdout
    assert [e["state"] for e in _events(nemoclaw.home, "t-route") if e["event"] == "state_entered"] == ["gate", "branch"]


def test_refusal_prints_diagnosis_on_stderr_and_exits_1(nemoclaw):
    r = nemoclaw.run("t-route")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.splitlines() == ["  Test refusal line one.", "  No sandbox data was changed."]
    end = _events(nemoclaw.home, "t-route")[-1]
    assert (end["terminal"], end["exit_code"], end["reason"]) == ("refused", 1, "test_refusal")


def test_exception_in_step_fails_without_traceback(nemoclaw):
    r = nemoclaw.run("t-boom")
    assert r.returncode == 1
    assert "Step 't_boom' (state 'explode') failed: RuntimeError: the step blew up" in r.stderr
    assert "Traceback" not in r.stderr
    assert _events(nemoclaw.home, "t-boom")[-1]["terminal"] == "failed"


def test_debug_shows_the_traceback(nemoclaw):
    r = nemoclaw.run("t-boom", "--debug")
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr and "RuntimeError: the step blew up" in r.stderr


def test_step_error_exit_code_overrides_terminal(nemoclaw):
    r = nemoclaw.run("t-fatal")
    assert r.returncode == 2
    assert r.stderr.strip() == "Registry file is corrupt."
    # Not retryable: one attempt only, although the state allows five.
    assert (nemoclaw.home / "fatal.count").read_text() == "1"


def test_retry_succeeds_on_third_attempt(nemoclaw):
    r = nemoclaw.run("t-retry", env={"FLAKY_SUCCEEDS_AT": "3"})
    assert r.returncode == 0, r.stderr
    assert "flaky succeeded on attempt 3" in r.stdout
    assert "Retrying 'flaky' (attempt 2 of 3)" in r.stdout
    retries = [e for e in _events(nemoclaw.home, "t-retry") if e["event"] == "retry"]
    assert [e["attempt"] for e in retries] == [1, 2]


def test_retry_gives_up_after_attempts(nemoclaw):
    r = nemoclaw.run("t-retry", env={"FLAKY_SUCCEEDS_AT": "99"})
    assert r.returncode == 1
    assert (nemoclaw.home / "flaky.count").read_text() == "3"
    assert "not yet (attempt 3)" in r.stderr
    assert _events(nemoclaw.home, "t-retry")[-1]["terminal"] == "failed"


def test_ctrl_c_discards_staging_and_exits_130(nemoclaw):
    proc = nemoclaw.popen("t-wait")
    marker = nemoclaw.home / "staged.path"
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    staged = Path(marker.read_text())
    assert (staged / "alpha" / "data.txt").exists() or any(staged.rglob("data.txt"))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert not staged.exists()
    assert "nothing partial was committed" in err
    assert _events(nemoclaw.home, "t-wait")[-1]["terminal"] == "interrupted"


def test_commit_moves_staged_dirs_and_leaves_no_staging(nemoclaw):
    r = nemoclaw.run("t-commit")
    assert r.returncode == 0, r.stderr
    root = nemoclaw.home / ".nemoclaw" / "rebuild-backups"
    for name in ("alpha", "beta"):
        [committed] = list((root / name).iterdir())
        assert (committed / "file.txt").read_text() == name
    assert list((root / ".staging").iterdir()) == []


def test_foreach_runs_child_per_item_and_reports_partial(nemoclaw):
    r = nemoclaw.run("t-each")
    assert r.returncode == 0, r.stderr
    assert [l for l in r.stdout.splitlines() if "worked on" in l] == ["  worked on one", "  worked on two", "  worked on three"]
    r = nemoclaw.run("t-each", env={"FAIL_ITEM": "two"})
    assert r.returncode == 1
    assert "item two failed" in r.stderr
    assert "worked on three" in r.stdout  # one failed item does not stop the others
    end = _events(nemoclaw.home, "t-each")
    finished = [e for e in end if e["event"] == "item_finished"]
    assert [(e["item"], e["exit_code"]) for e in finished] == [("one", 0), ("two", 1), ("three", 0)]
    assert end[-1]["terminal"] == "some_failed"


def test_runs_list_and_show(nemoclaw):
    nemoclaw.run("t-route", "--allow")
    nemoclaw.run("t-boom")
    r = nemoclaw.run("runs", "list", "--json")
    rows = json.loads(r.stdout)
    assert [(x["workflow"], x["terminal"], x["exit_code"]) for x in rows] == [("t-boom", "failed", 1), ("t-route", "done", 0)]
    r = nemoclaw.run("runs", "show", rows[1]["run"][:22])
    assert r.returncode == 0
    assert "state_entered" in r.stdout and 'state="work"' in r.stdout
    assert nemoclaw.run("runs", "show", "nope").returncode == 2
