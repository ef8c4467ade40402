"""Every kind of bad workflow file is rejected before anything runs, naming file, line and key.

The loader in process (`load_workflow`, against the engine's test steps); the `workflows
validate` command's own output in process too (tests/cli/ has the program's exit codes).
"""

import pytest

from orchestrator.kernel.errors import DefinitionError
from orchestrator.engine.loader import load_workflow

from tests.support.engine import GOOD_WORKFLOW  # (importing it registers the engine's test steps)
from tests.support.cli import invoke

GOOD = GOOD_WORKFLOW

CASES = {
    "unknown-key": (GOOD.replace("    do: t_ok\n", "    do: t_ok\n    colour: blue\n"), 12, "states.second.colour: unknown key 'colour'; valid keys: do,"),
    "wrong-type": (GOOD.replace("initial: first", "initial: [first]"), 3, "initial: expected a string, got a list"),
    "bad-retry-type": (GOOD + "    retry:\n      attempts: three\n", 14, "states.second.retry.attempts: expected an integer, got str 'three'"),
    "bad-state-name": (GOOD.replace("second", "Second-State"), 10, "state name 'Second-State' must match [a-z0-9_]+"),
    "unreachable": (GOOD + "  orphan:\n    do: t_ok\n    next: done\n", 13, "state 'orphan' is unreachable from initial state 'first'"),
    "no-terminal": (GOOD.replace("    do: t_ok\n    next: done\n", "    do: t_ok\n    next: third\n") + "  third:\n    do: t_ok\n    next: second\n", 10, "no terminal state (done, refused, failed, ...) can be reached from 'second'"),
    "terminal-with-exit-route": (GOOD + "  finished:\n    terminal: true\n    exit: 0\n    next: done\n", 16, "terminal state 'finished' cannot have 'next'"),
    "unknown-step": (GOOD.replace("do: t_ok", "do: t_okay"), 11, "unknown step 't_okay'; registered steps:"),
    "impossible-branch": (GOOD.replace("      empty: done", "      empty: done\n      full: done"), 10, "step 't_branch' never ends with 'full'; it can end with: empty, next"),
    "unrouted-branch": (GOOD.replace("    branches:\n      empty: done\n", ""), 5, "step 't_branch' can end with 'empty'; route it under 'branches: {empty: <state>}'"),
    "unknown-destination": (GOOD.replace("next: second", "next: secnd"), 7, "unknown state 'secnd'; states are:"),
    "missing-refuse": (GOOD.replace("do: t_ok", "do: t_refuse"), 10, "step 't_refuse' may refuse; add 'refuse: refused'"),
    "retry-on-commit": (GOOD.replace("do: t_ok", "do: t_stage_commit") + "    retry: {attempts: 2}\n", 13, "step 't_stage_commit' commits data and must not be retried"),
    "yaml-syntax": (GOOD.replace("  second:\n", "  second: [\n"), 12, "malformed YAML"),
    "duplicate-key": (GOOD.replace("    next: second\n", "    next: second\n    next: done\n"), 8, "duplicate key 'next'"),
    "missing-key": (GOOD.replace("initial: first\n", ""), 1, "missing required key 'initial'"),
    "yaml-boolean-key": (GOOD.replace("      empty: done", "      on: done"), 9, "is not a string (YAML 1.1 reads on/off/yes/no as booleans"),
    "name-mismatch": (GOOD.replace("name: {name}", "name: other-name"), 1, "'other-name' must match the file name"),
    "read-only-not-bool": ("read_only_when: colour\n" + GOOD, 1, "read_only_when: 'colour' must name a bool option; bool options: none"),
    "guard-needs-preflight": ("guard: {{action: doing things, command: nemoclaw x}}\n" + GOOD, 6, "guarded workflow runs step 't_branch' before 'do: preflight'; only local read-only steps may come first"),
}


def _problems(path) -> str:
    with pytest.raises(DefinitionError) as info:
        load_workflow(path, {path.stem})
    return "\n".join(info.value.problems)


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_workflow_is_rejected_with_file_line_and_key(tmp_path, case):
    text, line, message = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text.replace("{name}", case).replace("{{", "{").replace("}}", "}"))
    problems = _problems(path)
    assert f"{path}:{line}: " in problems, problems
    assert message in problems, problems


def test_valid_file_passes(tmp_path):
    path = tmp_path / "fine.yaml"
    path.write_text(GOOD.format(name="fine"))
    spec = load_workflow(path, {"fine"})
    assert (spec.name, spec.initial, sorted(spec.all_states)) == ("fine", "first", ["done", "failed", "first", "refused", "second"])


def test_validate_command_prints_a_tick_or_every_problem_and_exits_2(engine, tmp_path):
    good, bad = tmp_path / "fine.yaml", tmp_path / "broken.yaml"
    good.write_text(GOOD.format(name="fine"))
    bad.write_text(GOOD.format(name="broken").replace("do: t_ok", "do: t_missing"))
    r = invoke("workflows", "validate", str(good))
    assert (r.returncode, r.stdout, r.stderr) == (0, f"  ✓ {good}\n", "")
    r = invoke("workflows", "validate", str(good), str(bad))
    assert r.returncode == 2
    assert r.stdout == f"  ✓ {good}\n"
    assert r.stderr.splitlines()[0].startswith(f"{bad}:11: states.second.do: unknown step 't_missing'")
    assert r.stderr.splitlines()[-1] == "  1 of 2 workflow file(s) invalid."


def test_unknown_with_parameter_is_rejected(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(GOOD.format(name="params").replace("    do: t_ok\n", "    do: t_ok\n    with: {colour: blue}\n"))
    assert f"{path}:12: states.second.with.colour: step 't_ok' takes no parameter 'colour'; it takes: none" in _problems(path)
