"""Generic control steps a workflow can use anywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine.errors import StepError
from ..engine.steps import step

if TYPE_CHECKING:
    from ..engine.context import RunContext


@step("fail", outcomes=(), local=True, params=("message", "exit_code"))
def fail(ctx: "RunContext") -> None:
    """End the run as failed with `with.message` (stderr) and optional `with.exit_code`."""
    message = str(ctx.params.get("message") or "  The workflow ended in a failure state.")
    code = ctx.params.get("exit_code")
    raise StepError(message.format_map(_Options(ctx.options)), exit_code=int(code) if code is not None else None)


class _Options(dict):  # type: ignore[type-arg]
    """str.format_map source that leaves unknown {fields} as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
