"""`foreach:` states: run another workflow once per item a previous step left in ctx.data.

Each item runs as a child run of the same process: it shares the parent's lock (the parent
holds it) and event log, has its own run id and staging area, and may refuse or fail without
stopping the other items. The state ends with `next` when every item reached exit code 0,
else with `partial`; per-item results are kept in ctx.results[<state>].
"""

from __future__ import annotations

from typing import Any

import attrs

from ..workflow.spec import ForEach
from .context import RunContext
from .errors import StepError


def run_foreach(ctx: RunContext, state: str, fe: ForEach) -> str:
    from ..workflow.discover import load_by_name
    from .run import _drive

    items = ctx.data.get(fe.items)
    if items is None:
        raise StepError(f"foreach: no list '{fe.items}' was left by an earlier step")
    child_spec = load_by_name(fe.workflow, ctx.paths)
    results: dict[str, Any] = {}
    for index, item in enumerate(list(items)):
        options = {name: o.default for name, o in child_spec.options.items()}
        for name in options:
            if name in ctx.options:
                options[name] = ctx.options[name]
        options[fe.option] = item
        child = attrs.evolve(
            ctx,
            run_id=f"{ctx.run_id}.{index + 1}",
            workflow=child_spec,
            options=options,
            results={},
            item=item,
            exit_code=None,
            staging=None,
        )
        # Children share the parent's data so a step can read what the parent enumerated.
        child.data = ctx.data
        ctx.events.write("item_started", state=state, workflow=child_spec.name, item=item)
        try:
            terminal, reason = _drive(child)
        finally:
            if child.has_staging:
                child.staging.discard()
        code = child.exit_code if child.exit_code is not None else child_spec.exit_code(terminal)
        message = str(child.last_error).strip() if child.last_error is not None else None
        results[str(item)] = {"terminal": terminal, "exit_code": code, "reason": reason, "message": message}
        ctx.events.write("item_finished", state=state, item=item, terminal=terminal, exit_code=code)
    ctx.results[state] = results
    return "next" if all(r["exit_code"] == 0 for r in results.values()) else "partial"
