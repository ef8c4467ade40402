"""Helpers shared by the OpenShell-facing steps: guard wording and exact not-found reporting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine.errors import StepError
from ..openshell.diagnosis import Wording

if TYPE_CHECKING:
    from ..engine.context import RunContext


def guard_wording(ctx: "RunContext") -> Wording:
    """The workflow's `guard:` wording, or upstream's neutral default for unguarded workflows."""
    guard = getattr(ctx.workflow, "guard", None)
    if guard is None:
        return Wording()
    # `{name}` (or any option) in the wording is filled in: "rebuilding sandbox '{name}'".
    return Wording(action=ctx.fill(guard.action), command=ctx.fill(guard.command))


def report_exactly(ctx: "RunContext", exc: StepError) -> StepError:
    """Print a StepError's message as-is (no added indent) and mark it reported."""
    ctx.out.error(str(exc))
    exc.reported = True
    return exc
