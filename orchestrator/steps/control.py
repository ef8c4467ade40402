"""Generic control steps a workflow can use anywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kernel.errors import StepError
from ..engine.registry import implements

if TYPE_CHECKING:
    from ..engine.context import RunContext


@implements("fail")
def fail(ctx: "RunContext") -> None:
    """End the run as failed with `with.message` (stderr) and optional `with.exit_code`."""
    message = str(ctx.param("message"))
    code = ctx.param("exit_code")
    raise StepError(ctx.fill(message), exit_code=int(code) if code is not None else None)
