"""A step declares the workflow options it reads (type, default, help): the loader checks every
workflow that uses it declares what it needs, with the type it reads, and that a foreach child
takes the item; at run time the step reads them through `ctx.option` with the declared default."""

import pytest

from orchestrator.engine.loader import load_workflow
from orchestrator.kernel.errors import DefinitionError
from orchestrator.workflow.discover import builtin_dir

import tests.support.engine  # noqa: F401 - registers the engine's test steps


def _problems(path, known=()) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_workflow(path, {path.stem, *known})
    return info.value.problems


def _copy(tmp_path, builtin: str, name: str, *edits: tuple[str, str]):
    text = (builtin_dir() / f"{builtin}.yaml").read_text().replace(f"name: {builtin}\n", f"name: {name}\n", 1)
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_a_workflow_without_the_option_a_step_needs_does_not_load(tmp_path):
    """rebuild_target needs `name`: a rebuild without it used to validate and die at run time
    with KeyError: 'name'."""
    path = _copy(tmp_path, "rebuild-sandbox", "rebuild-nameless",
                 ("arguments:\n  - name: name\n    help: The sandbox to rebuild.\n", ""),
                 ("'{name}'", "the sandbox"), ("rebuild-sandbox {name}", "rebuild-nameless"))
    problems = _problems(path)
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if l.strip() == "do: rebuild_target")
    assert problems == [f"{path}:{line}: states.target.do: state 'target' runs step 'rebuild_target', which needs "
                        "option 'name' (The sandbox to rebuild); workflow 'rebuild-nameless' does not declare it: add "
                        "it under 'arguments' (or 'options')"]


def test_an_option_of_another_type_than_the_step_reads_does_not_load(tmp_path):
    path = _copy(tmp_path, "backup-all", "backup-typed", ("  parallel:\n    type: int\n    min: 1\n    max: 64\n",
                                                          "  parallel:\n    type: str\n"))
    problems = "\n".join(_problems(path))
    assert (f"{path}:15: options.parallel.type: state 'snapshot' runs step 'snapshot', which reads option 'parallel' "
            "as an integer; declare it with type int") in problems
    path = _copy(tmp_path, "backup-all", "backup-choices", ("choices: [home, agent]", "choices: [home, agent, all]"))
    assert any("options.scope.choices: state 'snapshot' runs step 'snapshot', which knows only home, agent for "
               "option 'scope', not all" in p for p in _problems(path))


def test_a_foreach_needs_a_child_option_that_takes_the_item(tmp_path):
    """`option:` names what the child receives each item as; one it does not have used to validate."""
    path = _copy(tmp_path, "upgrade-sandboxes", "upgrade-misnamed", ("option: name", "option: sandbox"))
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if l.strip() == "option: sandbox")
    problems = _problems(path, {"rebuild-sandbox"})
    assert (f"{path}:{line}: states.rebuild.foreach.option: workflow 'rebuild-sandbox' has no option or argument "
            "'sandbox' to receive each item; it takes: image, from_backup, scope, replicate, name") in problems
    assert any("workflow 'rebuild-sandbox' needs argument 'name', which a foreach gives no value" in p for p in problems)


def test_reserved_flags_cannot_be_redeclared(tmp_path):
    path = _copy(tmp_path, "backup-all", "backup-flags", ("options:\n", "options:\n  debug:\n    type: bool\n"))
    assert any("options.debug: 'debug' is an option of every workflow command (--debug); remove it" in p
               for p in _problems(path))


def test_a_step_reads_its_declared_default_when_the_workflow_has_no_such_option(engine):
    r = engine.run("t-colour", item="sky")
    assert (r.returncode, r.stdout) == (0, "  sky is blue\n"), r.stderr
    each = engine.run("t-colour-each")
    assert each.returncode == 0, each.stderr
    assert each.stdout.splitlines() == ["  one is blue", "  two is blue", "  three is blue"]


def test_reading_an_undeclared_option_is_an_internal_error(engine):
    r = engine.run("t-sneaky")
    assert r.returncode == 1
    assert "  internal error: step 't_sneaky' reads option 'colour' without declaring it" in r.stderr


def test_an_option_a_foreach_passes_on_must_fit_the_childs(tmp_path):
    path = _copy(tmp_path, "upgrade-sandboxes", "upgrade-typed",
                 ("  image:\n    type: str\n", "  image:\n    type: int\n"))
    assert any("options.image.type: state 'rebuild' passes option 'image' to workflow 'rebuild-sandbox', where it "
               "is of type str, not int" in p for p in _problems(path, {"rebuild-sandbox"}))


def test_show_names_the_options_a_step_reads_that_the_workflow_fixes(engine):
    from tests.support.cli import invoke

    r = invoke("workflows", "show", "t-colour")
    assert r.returncode == 0, r.stderr
    assert "  fixed colour = 'blue' (no --colour here; step 't_colour' reads this default): The colour to say.\n" in r.stdout
    assert "fixed item" not in r.stdout  # an argument of the workflow


def test_a_with_parameter_the_state_does_not_give_is_the_declared_default(engine):
    r = engine.run("t-word")
    assert (r.returncode, r.stdout) == (0, "  hello\n  bye bye\n"), r.stderr


def test_a_repeated_flag_reaches_the_step_as_every_value(engine):
    """`repeat: true`: `--image a=x --image b=y` once kept only the last value."""
    from tests.support.cli import invoke

    r = invoke("t-colours", "pen", "--colour", "red", "--colour", "blue")
    assert (r.returncode, r.stdout) == (0, "  pen is red blue\n"), r.stderr
    # None given: the step's declared default.
    assert invoke("t-colours", "pen").stdout == "  pen is blue\n"


def test_repeat_is_only_for_str_options_without_a_default(tmp_path):
    path = tmp_path / "t-bad-repeat.yaml"
    path.write_text("name: t-bad-repeat\nsummary: x\noptions:\n  n: {type: int, repeat: true}\n"
                    "initial: a\nstates:\n  a: {do: fail}\n")
    assert any("options.n.repeat: 'repeat' is only for str options without a default" in p
               for p in _problems(path, set()))
