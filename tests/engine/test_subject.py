"""The engine knows no domain name: what a run works on is its workflow's subject (its first
argument, whatever it is called), and the guard check a resumed run repeats is the step whose
signature `guards`, not a step called preflight."""

import signal

import pytest

from orchestrator.engine import registry
from orchestrator.engine.loader import load_workflow
from orchestrator.engine.registry import step
from orchestrator.kernel.errors import DefinitionError, Refusal


def test_an_interrupted_run_is_named_by_its_subject_argument(engine, program):
    killed = program.fork("t-mark-thing", "alpha", env={"NEMOCLAW_TEST_KILL_AT": "t-mark-thing:mark:enter"})
    _, err = killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL, err
    again = engine.run("t-commit")
    assert again.returncode == 0, again.stderr
    assert "(t-mark-thing 'alpha', stopped in state 'mark' at " in again.stdout
    assert (engine.home / "marks").read_text() == "thing\n"


def test_a_foreach_gives_each_item_as_the_childs_first_argument_by_default(engine):
    r = engine.run("t-colour-default")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["  one is blue", "  two is blue", "  three is blue"]


GUARDED = """\
name: guarded
summary: Guarded by a check that is not called preflight.
guard: {action: doing things, command: nemoclaw guarded}
initial: check
states:
  check:
    do: t_gatekeeper
    next: work
    refuse: refused
  work:
    do: t_ok
    next: done
"""


def test_the_guard_check_is_the_step_whose_signature_guards(engine, monkeypatch, tmp_path):
    for table in ("_SIGNATURES", "_MODULES", "_IMPLS"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))

    @step("t_gatekeeper", refuses=True, guards=True)
    def gatekeeper(ctx):
        raise Refusal(["  Gatekeeper says no."], reason="gate")

    path = tmp_path / "guarded.yaml"
    path.write_text(GUARDED)
    assert load_workflow(path, {"guarded"}).guard is not None
    path.write_text(GUARDED.replace("t_gatekeeper", "t_refuse"))
    with pytest.raises(DefinitionError) as info:
        load_workflow(path, {"guarded"})
    assert any("guarded workflow runs step 't_refuse' before 'do: preflight' or 'do: t_gatekeeper'" in p
               for p in info.value.problems), info.value.problems


GUARDED_MARK = """\
name: guarded-mark
summary: Guarded by a check that is not called preflight; then changes the world.
guard: {action: marking, command: nemoclaw guarded-mark}
initial: check
states:
  check:
    do: t_gate
    next: mark
    refuse: refused
  mark:
    do: t_mark
    with: {label: marked}
    resume: retry
    next: done
"""


def test_a_resumed_run_repeats_the_guard_check_whatever_it_is_called(engine, program, monkeypatch, tmp_path):
    """The gate is open for the first run (killed while marking) and closed for its resume: the
    resume refuses, changes nothing and the run stays interrupted."""
    from tests.support.engine import WORKFLOWS

    for table in ("_SIGNATURES", "_MODULES", "_IMPLS"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))
    closed = engine.home / "gate-closed"

    @step("t_gate", refuses=True, guards=True)
    def gate(ctx):
        if closed.exists():
            raise Refusal(["  The gate is closed."], reason="gate")

    (tmp_path / "guarded-mark.yaml").write_text(GUARDED_MARK)
    path = f"{WORKFLOWS}:{tmp_path}"
    monkeypatch.setenv("NEMOCLAW_WORKFLOWS_PATH", path)
    killed = program.fork("guarded-mark", env={"NEMOCLAW_WORKFLOWS_PATH": path,
                                               "NEMOCLAW_TEST_KILL_AT": "guarded-mark:mark:enter"})
    _, err = killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL, err
    closed.write_text("")
    again = engine.run("t-commit")
    assert again.returncode == 1, again.stderr
    assert "  The gate is closed." in again.stderr
    assert "was not resumed and stays interrupted; nothing was changed." in again.stderr
    assert not (engine.home / "marks").exists()
