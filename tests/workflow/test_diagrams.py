"""diagrams/ holds the current state diagram of every built-in workflow."""

from pathlib import Path

from orchestrator.engine.loader import load_workflow
from orchestrator.workflow.discover import builtin_dir
from orchestrator.workflow.graph import diagram_markdown, mermaid

from tests.support.cli import invoke

ROOT = Path(__file__).resolve().parents[2]


def test_every_builtin_workflow_has_a_current_diagram():
    workflows = sorted(builtin_dir().glob("*.yaml"))
    assert workflows, "no built-in workflows found"
    stale = []
    for path in workflows:
        expected = diagram_markdown(load_workflow(path))
        checked_in = ROOT / "diagrams" / f"{path.stem}.md"
        if not checked_in.exists() or checked_in.read_text() != expected:
            stale.append(checked_in.name)
    assert not stale, f"stale diagrams {stale}: run `nemoclaw workflows graph --write diagrams`"
    assert {p.name for p in (ROOT / "diagrams").glob("*.md")} == {f"{p.stem}.md" for p in workflows}


def test_graph_command_prints_mermaid_for_a_workflow(engine):
    r = invoke("workflows", "graph", "t-route")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:4] == ["---", "title: t-route", "---", "stateDiagram-v2"]
    for edge in ("gate --> branch: next", "gate --> refused: refuse", "branch --> done: empty", "work --> failed: error"):
        assert edge in r.stdout


def test_mermaid_has_every_state_and_transition():
    spec = load_workflow(builtin_dir() / "backup-all.yaml")
    text = mermaid(spec)
    for state in ("registry", "preflight", "enumerate", "snapshot", "commit", "incomplete", "done", "refused", "failed"):
        assert f'state "{state}" as {state}' in text
    assert "preflight --> refused: refuse" in text and "commit --> replicate_partial: partial" in text
    assert "replicate --> incomplete: incomplete" in text and "replicate_partial --> incomplete: next" in text
