"""`read_registry`: the registered sandboxes, before anything talks to OpenShell.

Local and read-only, so a guarded workflow runs it before its preflight: an empty registry
ends the run with exit 0 and no OpenShell call at all, as upstream does (it works with no
`openshell` installed). Writes the `registry` fact (steps/facts.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine.registry import implements
from ..adapters.nemoclaw_registry import read_registry as _read

if TYPE_CHECKING:
    from ..engine.context import RunContext


@implements("read_registry")
def read_registry(ctx: "RunContext") -> str:
    """Read ~/.nemoclaw/sandboxes.json; end with `empty` (printing `with.empty_message`) if none."""
    entries = _read(ctx.paths.registry_file)
    ctx.put("registry", entries)
    if not entries:
        message = ctx.params.get("empty_message")
        if message:
            ctx.out.line(message)
        return "empty"
    return "next"
