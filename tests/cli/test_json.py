"""`--json` is a flag of every workflow command, not only of files that declare an option named
json: stdout carries one JSON object per run (docs/workflows.md, "--json"), progress goes to stderr."""

import json

import pytest

from orchestrator.workflow.discover import builtin_dir

from tests.support.cli import invoke

BUILTIN = sorted(p.stem for p in builtin_dir().glob("*.yaml"))


@pytest.mark.parametrize("workflow", BUILTIN)
def test_every_built_in_workflow_has_json(workflow):
    r = invoke(workflow, "--help")
    assert r.returncode == 0, r.stderr
    assert "--json" in r.stdout


def test_upgrade_sandboxes_check_json_prints_its_document(engine):
    """upgrade-sandboxes declares no `json` option: its --json used to be a usage error (exit 2)."""
    r = invoke("upgrade-sandboxes", "--check", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc == {"run": doc["run"], "workflow": "upgrade-sandboxes", "terminal": "done", "exit_code": 0,
                   "reason": None, "summary": {"registered": 0},
                   "messages": [{"level": "info", "text": "No sandboxes found in the registry."}]}
    assert r.stderr == "  No sandboxes found in the registry.\n"


def test_a_report_fact_reaches_stdout_and_progress_stays_on_stderr(engine):
    r = invoke("t-tally", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["workflow"], doc["terminal"], doc["summary"]) == ("t-tally", "done", {"counted": 3})
    assert r.stderr == "  counted 3\n"
    plain = invoke("t-tally")
    assert (plain.stdout, plain.stderr) == ("  counted 3\n", "")


def test_an_option_without_help_gets_the_help_its_step_declares(engine, monkeypatch, tmp_path):
    from tests.support.engine import WORKFLOWS

    (tmp_path / "t-colour-flag.yaml").write_text(
        (WORKFLOWS / "t-colour.yaml").read_text().replace("name: t-colour\n", "name: t-colour-flag\n")
        .replace("arguments:", "options:\n  colour: {type: str, default: red}\narguments:"))
    monkeypatch.setenv("NEMOCLAW_WORKFLOWS_PATH", f"{WORKFLOWS}:{tmp_path}")
    r = invoke("t-colour-flag", "--help")
    assert r.returncode == 0, r.stderr
    assert "--colour TEXT  The colour to say.  [default: red]" in r.stdout
    assert "item: The item." in r.stdout
    ran = invoke("t-colour-flag", "sky")
    assert (ran.returncode, ran.stdout) == (0, "  sky is red\n"), ran.stderr
