"""The `nemoclaw` program itself, as a real process: start-up, --help, --json, exit codes and
streams. Everything behind the command line is tested in process elsewhere."""

import json

import pytest

from tests.support.engine import GOOD_WORKFLOW


@pytest.fixture
def broken(program):
    """A user workflow file naming a step that does not exist."""
    wf = program.home / ".nemoclaw" / "workflows"
    wf.mkdir(parents=True)
    path = wf / "broken.yaml"
    path.write_text(GOOD_WORKFLOW.format(name="broken").replace("do: t_ok", "do: t_missing"))
    return path


def test_help_lists_every_command_even_with_an_invalid_workflow_on_the_path(program, broken):
    r = program.run("--help")
    assert (r.returncode, r.stderr) == (0, "")
    commands = r.stdout.split("Commands:")[1]
    for name in ("backup-all", "upgrade-sandboxes", "workflows", "runs", "gateway", "backups", "t-route", "t-each"):
        assert f"\n  {name} " in commands, name
    # A file that parses is listed by its summary; its unknown step is reported when it runs.
    assert [l.split(None, 1) for l in commands.splitlines() if l.startswith("  broken ")] == [["broken", "A valid workflow."]]


def test_an_invalid_workflow_exits_2_and_runs_nothing(program, broken):
    r = program.run("broken")
    assert r.returncode == 2
    assert r.stdout == ""
    assert f"{broken}:11: states.second.do: unknown step 't_missing'" in r.stderr
    assert not (program.home / ".nemoclaw" / "runs").exists()


def test_a_refusal_exits_1_with_its_diagnosis_on_stderr_only(program):
    r = program.run("t-route")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.splitlines() == ["  Test refusal line one.", "  No sandbox data was changed."]


def test_a_failing_step_exits_1_with_one_sentence_and_no_traceback(program):
    r = program.run("t-boom")
    assert r.returncode == 1
    assert "Step 't_boom' (state 'explode') failed: RuntimeError: the step blew up" in r.stderr
    assert "Traceback" not in r.stderr


def test_json_output_is_one_document_on_stdout(program, broken):
    r = program.run("workflows", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["backup-all"]["builtin"] and rows["backup-all"]["valid"]
    assert rows["t-route"]["summary"] == "Routes to done, refused or failed depending on options."
    assert not rows["broken"]["valid"] and not rows["broken"]["builtin"]


def test_python_dash_m_orchestrator_is_the_nemoclaw_command(program):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "orchestrator", "--help"], env=program.env, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == program.run("--help").stdout
