"""The step table and the fact table of docs/workflows.md are generated from the registry (the
step signatures and the declared facts), like diagrams/ from the workflow files: a test fails
when the checked-in tables differ from what the registry says."""

from pathlib import Path

from orchestrator.engine import registry
from orchestrator.engine.contract_docs import begin_marker, end_marker, fact_table, rewrite, step_table
from orchestrator.engine.registry import declare, signatures
from orchestrator.workflow.signature import StepOption

from tests.support.cli import invoke

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "workflows.md"


def test_the_step_and_fact_tables_in_the_docs_are_current():
    text = DOC.read_text()
    assert rewrite(text, str(DOC)) == text, "stale tables in docs/workflows.md: run `nemoclaw workflows docs --write docs`"


def test_the_tables_follow_the_signatures(monkeypatch):
    """A built-in step declared anew shows up, with its facts and options; a test's steps do not."""
    for table in ("_SIGNATURES", "_MODULES", "_IMPLS"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))
    signatures()
    declare("t_shiny", "orchestrator.steps.t_shiny", outcomes=("next", "dull"), reads=("sandbox_list",),
            writes=("to_rebuild",), mutates=True, options={"shine": StepOption(int, 3, "How much.")},
            doc="makes things shine")
    steps = step_table()
    assert ("| `t_shiny` | `dull`, `next`; mutates | reads `sandbox_list`; writes `to_rebuild` | "
            "`shine` (int, default `3`) | makes things shine |") in steps
    assert "`t_ok`" not in steps  # tests/support/engine_steps.py is not the product's library
    facts = fact_table()
    assert "| `to_rebuild` | list[str] | `confirm_rebuilds`, `t_shiny` |" in facts
    row = next(line for line in facts.splitlines() if line.startswith("| `sandbox_list` |"))
    assert "`t_shiny`" in row.split(" | ")[3]  # read by
    assert "`items`" not in facts  # declared by the tests only


def test_docs_command_rewrites_only_the_generated_tables(tmp_path):
    text = DOC.read_text()
    start = text.index(begin_marker("steps")) + len(begin_marker("steps"))
    stale = text[:start] + "\n\n| step | made up |\n" + text[text.index(end_marker("steps")):]
    (tmp_path / "workflows.md").write_text(stale)
    r = invoke("workflows", "docs", "--write", str(tmp_path))
    assert (r.returncode, r.stdout) == (0, f"  wrote {tmp_path / 'workflows.md'}\n"), r.stderr
    assert (tmp_path / "workflows.md").read_text() == text
    (tmp_path / "workflows.md").write_text("# no tables\n")
    r = invoke("workflows", "docs", "--write", str(tmp_path))
    assert r.returncode == 2 and "no generated steps table" in r.stderr
