"""The loader's data-flow and resume rules, in process (no `nemoclaw` process needed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.kernel.errors import DefinitionError
from orchestrator.engine.loader import load_workflow

KNOWN = {"backup-all", "rebuild-sandbox", "upgrade-sandboxes", "migrate-openshell", "migrate-sandbox"}


def load(tmp_path: Path, name: str, body: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(body))
    return load_workflow(path, KNOWN | {name})


def problems(tmp_path: Path, name: str, body: str) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load(tmp_path, name, body)
    return info.value.problems


def test_backing_up_without_a_listing_step_fails_validation_at_the_snapshot_line(tmp_path):
    # Before typed facts this workflow "backed up nothing" and exited 0.
    found = problems(tmp_path, "lazy-backup", """\
        name: lazy-backup
        summary: Backs up without listing sandboxes.
        guard: {action: backing up, command: nemoclaw lazy-backup}
        initial: registry
        states:
          registry:
            do: read_registry
            next: preflight
            branches: {empty: done}
          preflight:
            do: preflight
            next: snapshot
            refuse: refused
          snapshot:
            do: snapshot
            resume: retry
            next: commit
          commit:
            do: commit_backups
            resume: snapshot
            next: done
            branches: {partial: failed}
        """)
    assert found == [
        f"{tmp_path}/lazy-backup.yaml:15: states.snapshot.do: step 'snapshot' reads fact 'sandbox_list', which is not "
        "written on every path before state 'snapshot' (no state of this workflow writes it; add a state whose step "
        "writes 'sandbox_list')"
    ]


def test_a_fact_written_on_only_one_path_is_not_enough(tmp_path):
    found = problems(tmp_path, "one-path", """\
        name: one-path
        summary: Lists on one branch only.
        initial: registry
        states:
          registry:
            do: read_registry
            next: list
            branches: {empty: snapshot}
          list:
            do: sandbox_list
            next: snapshot
            refuse: refused
          snapshot:
            do: snapshot
            resume: retry
            next: done
        """)
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path}/one-path.yaml:14: states.snapshot.do: step 'snapshot' reads fact 'sandbox_list'")
    assert "(it is written by state(s): list)" in found[0]


def test_an_error_edge_carries_none_of_the_failed_states_writes(tmp_path):
    found = problems(tmp_path, "err-edge", """\
        name: err-edge
        summary: Reads a fact after its writer failed.
        initial: registry
        states:
          registry:
            do: read_registry
            next: done
            error: list
            branches: {empty: done}
          list:
            do: sandbox_list
            next: snapshot
            refuse: refused
          snapshot:
            do: snapshot
            resume: retry
            next: done
        """)
    assert [p.split(": ", 2)[1] for p in found] == ["states.snapshot.do"]
    assert "reads fact 'registry'" in found[0]


def test_a_world_changing_step_must_declare_resume(tmp_path):
    found = problems(tmp_path, "no-resume", """\
        name: no-resume
        summary: Deletes without saying how to resume.
        arguments: [{name: name}]
        initial: registry
        states:
          registry:
            do: read_registry
            next: list
            branches: {empty: done}
          list:
            do: sandbox_list
            next: target
            refuse: refused
          target:
            do: rebuild_target
            next: delete
            branches: {from_backup: done}
          delete:
            do: delete_sandbox
            next: done
        """)
    assert found == [
        f"{tmp_path}/no-resume.yaml:18: states.delete: step 'delete_sandbox' changes sandboxes or backups: say what a "
        "resumed run does if a crash interrupts it here, 'resume: retry' (run it again) or 'resume: <state>'"
    ]


def test_resume_names_retry_or_a_state(tmp_path):
    found = problems(tmp_path, "bad-resume", """\
        name: bad-resume
        summary: Resumes into nowhere.
        initial: registry
        states:
          registry:
            do: read_registry
            resume: nowhere
            next: done
            branches: {empty: done}
        """)
    assert found == [f"{tmp_path}/bad-resume.yaml:7: states.registry.resume: resume must be 'retry' or a state; unknown state 'nowhere'"]


def test_with_parameters_are_typed(tmp_path):
    found = problems(tmp_path, "bad-param", """\
        name: bad-param
        summary: Passes a number where a string goes.
        initial: registry
        states:
          registry:
            do: read_registry
            with: {empty_message: 3}
            next: done
            branches: {empty: done}
        """)
    assert found == [f"{tmp_path}/bad-param.yaml:7: states.registry.with.empty_message: parameter 'empty_message' of "
                     "step 'read_registry': expected a string, got int 3"]


def test_a_user_workflow_cannot_make_failed_exit_0(tmp_path):
    found = problems(tmp_path, "happy-fail", """\
        name: happy-fail
        summary: Pretends failures are fine.
        initial: registry
        states:
          registry:
            do: read_registry
            next: done
            branches: {empty: done}
          failed:
            terminal: true
            exit: 0
        """)
    assert found == [f"{tmp_path}/happy-fail.yaml:11: states.failed.exit: built-in terminal 'failed' always exits 1 "
                     "(scripts rely on it); declare a terminal of your own"]


def test_option_bounds_are_checked(tmp_path):
    found = problems(tmp_path, "bounds", """\
        name: bounds
        summary: Bad bounds.
        options:
          parallel: {type: int, default: 0, min: 1}
          label: {type: str, min: 1}
        initial: registry
        states:
          registry:
            do: read_registry
            next: done
            branches: {empty: done}
        """)
    assert sorted(p.split(": ", 2)[1] for p in found) == ["options.label.min", "options.parallel.default"]


def test_the_built_in_workflows_declare_resume_on_every_world_changing_state():
    from orchestrator.engine.registry import signatures
    from orchestrator.workflow.discover import builtin_dir

    steps = signatures()
    for path in sorted(builtin_dir().glob("*.yaml")):
        spec = load_workflow(path, KNOWN)
        for name, state in spec.states.items():
            if state.do and steps[state.do].mutates:
                assert state.resume is not None, f"{path.name}: {name}"
