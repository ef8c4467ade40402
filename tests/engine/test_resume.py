"""An interrupted run is finished by the next mutating run, from where it stopped.

The kill needs a real process (NEMOCLAW_TEST_KILL_AT SIGKILLs it right after the journal
records the state's entry); reading the journal and the resuming run are in process.
"""

import json
import signal

from orchestrator.engine.journal import read_journal, replay

from tests.support.cli import invoke


def test_a_foreach_killed_in_its_second_item_resumes_that_item_then_runs_the_third(engine, program):
    home = engine.home
    killed = program.fork("t-marks", env={"NEMOCLAW_TEST_KILL_AT": "t-mark-item:mark:enter:2"})
    _, err = killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL, err
    assert (home / "marks").read_text().split() == ["one"]

    listed = invoke("runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows[0]["status"] == "interrupted" and rows[0]["stopped_in"] == "each"

    again = engine.run("t-commit")
    assert again.returncode == 0, again.stderr
    assert f"  Resuming interrupted run {rows[0]['run']} (t-mark-item 'two', stopped in state 'mark' at " in again.stdout
    assert (home / "marks").read_text().split() == ["one", "two", "three"]  # 'one' is not done twice
    events, _ = read_journal(home / ".nemoclaw" / "runs" / f"{rows[0]['run']}.jsonl")
    assert replay(events, rows[0]["run"]).finished["exit_code"] == 0
