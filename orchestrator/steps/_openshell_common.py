"""Helpers shared by the OpenShell-facing steps: guard wording and exact not-found reporting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..openshell.diagnosis import Wording

if TYPE_CHECKING:
    from ..engine.context import RunContext


def guard_wording(ctx: "RunContext") -> Wording:
    """The workflow's `guard:` wording, or upstream's neutral default for unguarded workflows."""
    guard = getattr(ctx.workflow, "guard", None)
    if guard is None:
        return Wording()
    return Wording(action=guard.action, command=guard.command)


def report_exactly(ctx: "RunContext", exc: Exception) -> Exception:
    """Print a StepError's message as-is (no added indent) and mark it reported."""
    ctx.out.error(str(exc))
    setattr(exc, "reported", True)
    return exc
