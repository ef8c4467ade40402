"""The step registry: Python callables that workflow YAML refers to by name (`do: <name>`).

A step is `func(ctx: RunContext) -> Outcome | str | None`:
  * `None` means the outcome `next`;
  * a `str` names the outcome (`next`, or a declared branch such as `empty`);
  * `Outcome(name, value)` also stores `value` in `ctx.results[<state name>]`.
It raises `Refusal` to refuse and `StepError` (or any exception) to fail.

Each step declares the outcomes it can produce, so the loader rejects a YAML branch the step
can never take, and whether it *commits* (moves data into place), so the loader rejects a
`retry` on it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .context import RunContext


@attrs.frozen
class Outcome:
    name: str = "next"
    value: Any = None


StepFunc = Callable[["RunContext"], "Outcome | str | None"]


@attrs.frozen
class StepDef:
    name: str
    func: StepFunc
    outcomes: frozenset[str]
    commits: bool
    refuses: bool
    local: bool
    params: frozenset[str]
    summary: str


_REGISTRY: dict[str, StepDef] = {}


def step(
    name: str,
    *,
    outcomes: Iterable[str] = ("next",),
    commits: bool = False,
    refuses: bool = False,
    local: bool = False,
    params: Iterable[str] = (),
) -> Callable[[StepFunc], StepFunc]:
    """Register `func` under `name`.

    `refuses=True` if it may raise `Refusal`; `commits=True` if it moves data into place (never
    retried); `local=True` if it only reads local files and calls no OpenShell or Docker
    program, so a guarded workflow may run it before its preflight (e.g. reading the registry,
    so an empty registry needs no OpenShell at all, as upstream). `params` names the keys a
    state may pass under `with:` (read as ctx.params).
    """

    def register(func: StepFunc) -> StepFunc:
        doc = (func.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = StepDef(
            name=name,
            func=func,
            outcomes=frozenset(outcomes),
            commits=commits,
            refuses=refuses,
            local=local,
            params=frozenset(params),
            summary=doc[0] if doc else "",
        )
        return func

    return register


def load_step_modules() -> None:
    """Import the built-in step library and any modules named in $NEMOCLAW_STEP_MODULES.

    $NEMOCLAW_STEP_MODULES is a comma-separated list of importable module names; it is how
    tests (and a site's own extensions) add steps without touching the package.
    """
    importlib.import_module("orchestrator.steps")
    for mod in filter(None, (m.strip() for m in os.environ.get("NEMOCLAW_STEP_MODULES", "").split(","))):
        importlib.import_module(mod)


def registered_steps() -> Mapping[str, StepDef]:
    load_step_modules()
    return dict(_REGISTRY)


def get_step(name: str) -> StepDef | None:
    return registered_steps().get(name)
