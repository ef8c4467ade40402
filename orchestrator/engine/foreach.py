"""`foreach:` states: run another workflow once per item of a list fact.

Each item runs as a child run in the same process: it shares the parent's lock (the parent
holds it) and journal, has its own run id (`<parent>.<n>`) and staging area, starts with only
the facts its state passes down (`facts:`), and may refuse or fail without stopping the other
items (unless it ends in a terminal listed in `stop_on`). The state ends with `next` when every
item reached exit code 0, else with `partial`; per-item results go into the `results` fact.

Resumed (the parent was interrupted in this state): items the journal shows finished keep
their result and are not run again, the interrupted child is resumed from its own journal
events, and the items after it run as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..workflow.spec import ForEach, WorkflowSpec
from ..kernel.errors import StepError
from .context import RunContext
from .loader import load_by_name


@attrs.frozen
class ItemResult:
    terminal: str
    exit_code: int
    reason: str | None = None
    message: str | None = None


@attrs.frozen
class ChildRunner:
    """What a foreach state needs of the run loop (engine/drive.py passes its own functions, so
    this module imports neither drive.py nor resume.py)."""

    new_context: Callable[..., RunContext]
    drive: Callable[[RunContext], tuple[str, str | None]]
    continue_child: Callable[[RunContext, WorkflowSpec, str], tuple[str, int, str | None, str | None]]


def run_foreach(ctx: RunContext, state: str, fe: ForEach, runner: ChildRunner) -> str:
    new_context, drive, continue_child = runner.new_context, runner.drive, runner.continue_child
    items = list(ctx.facts.get(fe.items) or [])
    child_spec = load_by_name(fe.workflow, ctx.paths)
    prior = ctx.prior_items or {}
    ctx.prior_items = None
    results: dict[str, ItemResult] = {}
    stopped_by: str | None = None
    stopped_terminal = ""
    for index, item in enumerate(items):
        key = str(item)
        done_before = (prior.get(key) or {}).get("result")
        if done_before:
            results[key] = ItemResult(**done_before)
            continue
        if stopped_by is not None:
            message = fe.stop_message.format(item=key, stopped_by=stopped_by, terminal=stopped_terminal)
            ctx.out.say_text(message, err=True)
            results[key] = ItemResult("not_run", 1, "stopped", message.strip())
            ctx.event("item_finished", state=state, item=item, terminal="not_run", exit_code=1, message=message.strip())
            continue
        child_id = (prior.get(key) or {}).get("child")
        if child_id:
            terminal, code, reason, message = continue_child(ctx, child_spec, child_id)
        else:
            options = {name: o.default for name, o in child_spec.options.items()}
            for name in options:
                if name in ctx.options:
                    options[name] = ctx.options[name]
            option = fe.option or child_spec.subject
            if option is None:  # validated at load time; kept for workflows built in code
                raise StepError(f"workflow '{child_spec.name}' has no argument to receive each item")
            options[option] = item
            child_id = f"{ctx.run_id}.{index + 1}"
            child = new_context(child_spec, options, run_id=child_id, paths=ctx.paths, out=ctx.out,
                                journal=ctx.journal, debug=ctx.debug, read_only_by=ctx.read_only_by)
            child.facts = {name: ctx.facts[name] for name in fe.facts if name in ctx.facts}
            ctx.event("item_started", state=state, item=item, child=child_id, workflow=child_spec.name)
            child.event("child_started", workflow=child_spec.name, source=str(child_spec.source or ""),
                        options=options, parent=ctx.run_id, item=item)
            try:
                terminal, reason = drive(child)
            finally:
                if child.has_staging:
                    child.staging.discard()
            code = child.exit_code if child.exit_code is not None else child_spec.exit_code(terminal)
            message = str(child.last_error).strip() if child.last_error is not None else None
        results[key] = ItemResult(terminal, code, reason, message)
        ctx.event("item_finished", state=state, item=item, child=child_id, terminal=terminal, exit_code=code,
                  reason=reason, message=message)
        if terminal in fe.stop_on:
            stopped_by, stopped_terminal = key, terminal
    ctx.put(fe.results, results)
    return "next" if all(r.exit_code == 0 for r in results.values()) else "partial"


def foreach_result_type() -> Any:
    return dict[str, ItemResult]
