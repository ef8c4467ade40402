"""Helpers shared by the OpenShell-facing steps: guard wording, exact not-found reporting, and
finding a listed sandbox's container."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..kernel.errors import StepError
from ..adapters.openshell.diagnosis import Wording
from ..adapters.sandbox_containers import find_sandbox_container
from .facts import SANDBOX_LIST

if TYPE_CHECKING:
    from ..engine.context import RunContext


def guard_wording(ctx: "RunContext") -> Wording:
    """The workflow's `guard:` wording, or upstream's neutral default for unguarded workflows."""
    guard = getattr(ctx.workflow, "guard", None)
    if guard is None:
        return Wording()
    # `{name}` (or any option) in the wording is filled in: "rebuilding sandbox '{name}'".
    return Wording(action=ctx.fill(guard.action), command=ctx.fill(guard.command))


def listed_container(ctx: "RunContext", name: str) -> Any:
    """The container of a sandbox the `sandbox_list` step saw, found by the id the listing
    gave (`-o json`), so no `openshell sandbox get` runs (it records a last-used sandbox). Only
    without an id, and never in a read-only run, is the gateway asked for it.

    A read-only run (`--check`) never asks Docker about a sandbox that a live run has frozen to
    back it up: while that run streams the container's archive, the engine holds the container's
    lock, and an inspect or exec would wait for the whole read (a StepError says so instead;
    docs/reference/deadlines.md, "Docker's container lock")."""
    if ctx.read_only:
        from ._pause_records import frozen_by_runs

        run_id, alive = frozen_by_runs(ctx).get(name, (None, False))
        if run_id is not None and alive:
            raise StepError(f"sandbox '{name}' is frozen by run {run_id} while it is backed up", kind="busy")
    listing = ctx.get(SANDBOX_LIST, None)
    sid = listing.ids.get(name) if listing is not None else None
    workspace = listing.workspaces.get(name) if listing is not None else None
    return find_sandbox_container(name, sandbox_id_=sid, ask_gateway=sid is None and not ctx.read_only,
                                  workspace=workspace)
