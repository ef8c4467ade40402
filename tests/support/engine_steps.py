"""Steps that exist only for the engine's tests (loaded through $NEMOCLAW_STEP_MODULES).

They act on real files so the tests can observe them: counters live in $ENGINE_TEST_DIR.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from orchestrator.kernel.errors import Refusal, StepError
from orchestrator.engine.facts import declare
from orchestrator.engine.registry import Outcome, step
from orchestrator.workflow.signature import StepOption

declare("items", list[str], "Items for the engine tests' foreach.")


def _dir() -> Path:
    return Path(os.environ["ENGINE_TEST_DIR"])


def _bump(name: str) -> int:
    f = _dir() / f"{name}.count"
    n = int(f.read_text()) + 1 if f.exists() else 1
    f.write_text(str(n))
    return n


@step("t_ok")
def t_ok(ctx):
    """Always succeeds and says so."""
    ctx.out.line(f"  ok in {ctx.workflow.name} with {sorted(ctx.options.items())}")


@step("t_branch", outcomes=("next", "empty"))
def t_branch(ctx):
    """Ends with `empty` when the --empty option is set."""
    return "empty" if ctx.options.get("empty") else Outcome("next")


@step("t_boom")
def t_boom(ctx):
    """Fails with an unexpected exception."""
    raise RuntimeError("the step blew up")


@step("t_refuse", refuses=True)
def t_refuse(ctx):
    """Refuses with a two-line diagnosis."""
    if ctx.options.get("allow"):
        return None
    raise Refusal(["  Test refusal line one.", "  No sandbox data was changed."], reason="test_refusal")


@step("t_flaky")
def t_flaky(ctx):
    """Fails with a transient error until its counter reaches $FLAKY_SUCCEEDS_AT."""
    n = _bump("flaky")
    if n < int(os.environ.get("FLAKY_SUCCEEDS_AT", "3")):
        raise StepError(f"not yet (attempt {n})", kind="transient")
    ctx.out.line(f"  flaky succeeded on attempt {n}")


@step("t_fatal")
def t_fatal(ctx):
    """Fails with a non-retryable StepError carrying exit code 2."""
    _bump("fatal")
    raise StepError("  Registry file is corrupt.", exit_code=2)


@step("t_stage_and_wait")
def t_stage_and_wait(ctx):
    """Stages a file, announces it, then waits to be interrupted."""
    d = ctx.staging.dir_for("alpha")
    (d / "data.txt").write_text("staged")
    (_dir() / "staged.path").write_text(str(ctx.staging.path))
    ctx.out.line("  staged, waiting")
    time.sleep(120)


@step("t_stage_commit", commits=True)
def t_stage_commit(ctx):
    """Stages one directory per item and commits them under the backup root."""
    for name in ("alpha", "beta"):
        d = ctx.staging.dir_for(name)
        (d / "file.txt").write_text(name)
        ctx.staging.commit(name, ctx.paths.backups_root / name / ctx.run_id)
    ctx.out.line("  committed alpha and beta")


@step("t_items", writes=("items",))
def t_items(ctx):
    """Leaves a list of items for a foreach state."""
    ctx.put("items", ["one", "two", "three"])


@step("t_item_work")
def t_item_work(ctx):
    """Works on one item; the item named by --fail-item fails."""
    if ctx.options.get("name") == os.environ.get("FAIL_ITEM"):
        raise StepError(f"  item {ctx.options['name']} failed")
    ctx.out.line(f"  worked on {ctx.options.get('name')}")


@step("t_undeclared_partial")
def t_undeclared_partial(ctx):
    """Declares only `next` but ends with `partial` (a buggy step)."""
    return "partial"


@step("t_mark", params={"label": str}, mutates=True)
def t_mark(ctx):
    """Appends its label to $ENGINE_TEST_DIR/marks (a world change a resumed run can see)."""
    with open(_dir() / "marks", "a") as fh:
        fh.write(ctx.params.get("label", "?") + "\n")


@step("t_mark_item", mutates=True)
def t_mark_item(ctx):
    """Appends the item (option `name`) to $ENGINE_TEST_DIR/marks."""
    with open(_dir() / "marks", "a") as fh:
        fh.write(str(ctx.options["name"]) + "\n")


@step("t_hold", mutates=True)
def t_hold(ctx):
    """A world-changing step that takes a while: writes $ENGINE_TEST_DIR/held.pid, waits while
    $ENGINE_TEST_DIR/hold exists (at most 120 s), then appends `held` (`held-<name>` for an
    item) to marks."""
    (_dir() / "held.pid").write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while (_dir() / "hold").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(_dir() / "marks", "a") as fh:
        fh.write("held" + (f"-{ctx.options['name']}" if ctx.options.get("name") else "") + "\n")


@step("t_say")
def t_say(ctx):
    """Tells the user what it did the way steps do (data, no indent, no colour), then fails."""
    from orchestrator.engine.output import Span

    out = ctx.out
    out.say("Looking at 'alpha'...", sandbox="alpha")
    out.ok("alpha: 2 dirs, 3 files", sandbox="alpha")
    out.say("Frozen for 0.125 s while its state was read.", tone="dim", indent=4, sandbox="alpha")
    out.say(("beta  v1 → v2  (", Span("running", "good"), ")"), indent=4, sandbox="beta")
    out.warn("beta: 1 socket was not backed up", sandbox="beta")
    if ctx.options.get("plain"):
        raise StepError("Nothing more to say.\nSecond line of it.")
    raise StepError("Sandbox 'gamma' is not registered", sandbox="gamma", hint="register it, then rerun.")


@step("t_colour", options={"colour": StepOption(str, "blue", "The colour to say."),
                           "item": StepOption(str, required=True, help="The item to colour.")})
def t_colour(ctx):
    """Says the `colour` option (its declared default when the workflow has none) and the item."""
    ctx.out.line(f"  {ctx.option('item')} is {ctx.option('colour')}")


@step("t_sneaky")
def t_sneaky(ctx):
    """Reads an option it does not declare (a buggy step)."""
    ctx.out.line(f"  {ctx.option('colour')}")


declare("t_tally", dict[str, int], "What t_tally counted (a report: part of --json).", report=True)


@step("t_tally", writes=("t_tally",))
def t_tally(ctx):
    """Counts, says so (progress), and leaves the count as a report fact."""
    ctx.out.line("  counted 3")
    ctx.put("t_tally", {"counted": 3})


@step("t_word", params={"word": StepOption(str, "hello", "What to say."), "times": int})
def t_word(ctx):
    """Says `with.word` (its declared default when the state gives none) `with.times` times (1 when unset)."""
    ctx.out.line("  " + " ".join([ctx.param("word")] * (ctx.param("times") or 1)))
