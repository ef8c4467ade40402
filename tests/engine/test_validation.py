"""Every kind of bad workflow file is rejected before anything runs, naming file, line and key."""


import pytest

GOOD = """\
name: {name}
summary: A valid workflow.
initial: first
states:
  first:
    do: t_branch
    next: second
    branches:
      empty: done
  second:
    do: t_ok
    next: done
"""

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


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_workflow_is_rejected_with_file_line_and_key(nemoclaw, tmp_path, case):
    text, line, message = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text.replace("{name}", case).replace("{{", "{").replace("}}", "}"))
    r = nemoclaw.run("workflows", "validate", str(path))
    assert r.returncode == 2, r.stdout
    assert f"{path}:{line}: " in r.stderr, r.stderr
    assert message in r.stderr, r.stderr


def test_valid_file_passes(nemoclaw, tmp_path):
    path = tmp_path / "fine.yaml"
    path.write_text(GOOD.format(name="fine"))
    r = nemoclaw.run("workflows", "validate", str(path))
    assert r.returncode == 0, r.stderr
    assert f"✓ {path}" in r.stdout


def test_invalid_user_workflow_does_not_run_and_exits_2(nemoclaw):
    wf = nemoclaw.home / ".nemoclaw" / "workflows"
    wf.mkdir(parents=True)
    (wf / "broken.yaml").write_text(GOOD.format(name="broken").replace("do: t_ok", "do: t_missing"))
    r = nemoclaw.run("broken")
    assert r.returncode == 2
    assert "broken.yaml:11: states.second.do: unknown step 't_missing'" in r.stderr
    assert not (nemoclaw.home / ".nemoclaw" / "runs").exists()
    # Other commands keep working with a broken file on the path.
    assert nemoclaw.run("--help").returncode == 0


def test_unknown_with_parameter_is_rejected(nemoclaw, tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(GOOD.format(name="params").replace("    do: t_ok\n", "    do: t_ok\n    with: {colour: blue}\n"))
    r = nemoclaw.run("workflows", "validate", str(path))
    assert r.returncode == 2
    assert f"{path}:12: states.second.with.colour: step 't_ok' takes no parameter 'colour'; it takes: none" in r.stderr
