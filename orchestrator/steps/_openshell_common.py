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
    # `{name}` (or any option) in the wording is filled in: "rebuilding sandbox '{name}'".
    fields = _Fields({k: v for k, v in ctx.options.items() if v is not None})
    return Wording(action=guard.action.format_map(fields), command=guard.command.format_map(fields))


class _Fields(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def report_exactly(ctx: "RunContext", exc: Exception) -> Exception:
    """Print a StepError's message as-is (no added indent) and mark it reported."""
    ctx.out.error(str(exc))
    setattr(exc, "reported", True)
    return exc
