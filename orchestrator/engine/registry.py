"""The step registry: Python callables that workflow YAML refers to by name (`do: <name>`).

A step is `func(ctx: RunContext) -> Outcome | str | None`:
  * `None` means the outcome `next`;
  * a `str` names the outcome (`next`, or a declared branch such as `empty`).
It reads and writes facts (`ctx.fact(name)`, `ctx.put(name, value)`), only those its
signature declares; it raises `Refusal` to refuse and `StepError` (or any exception) to fail.

The signature (workflow/signature.py) is what the loader checks a workflow against: outcomes,
typed `with:` parameters, the facts read and written, and whether the step commits, refuses,
is local or changes the world (then its state must declare `resume:`).
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..workflow.signature import StepSignature

if TYPE_CHECKING:
    from .context import RunContext


@attrs.frozen
class Outcome:
    name: str = "next"
    value: Any = None


StepFunc = Callable[["RunContext"], "Outcome | str | None"]


@attrs.frozen
class StepDef:
    signature: StepSignature
    func: StepFunc
    # For a run abandoned in a state of this step: the lines telling a person what to do by
    # hand, from the run's facts and the state's name (see engine/resume.py).
    advice: Callable[[dict[str, Any], str], list[str]] | None = None

    def __getattr__(self, item: str) -> Any:  # name, outcomes, commits, ... of the signature
        return getattr(self.signature, item)


_REGISTRY: dict[str, StepDef] = {}
_LOADED = False


def step(
    name: str,
    *,
    outcomes: Iterable[str] = ("next",),
    params: Mapping[str, type] | None = None,
    reads: Iterable[str] = (),
    may_read: Iterable[str] = (),
    writes: Iterable[str] = (),
    commits: bool = False,
    refuses: bool = False,
    local: bool = False,
    mutates: bool = False,
    advice: Callable[[dict[str, Any], str], list[str]] | None = None,
) -> Callable[[StepFunc], StepFunc]:
    """Register `func` under `name` with its signature (see workflow/signature.py)."""

    def register(func: StepFunc) -> StepFunc:
        doc = (func.__doc__ or "").strip().splitlines()
        sig = StepSignature(
            name=name,
            outcomes=frozenset(outcomes),
            params=dict(params or {}),
            reads=frozenset(reads),
            may_read=frozenset(may_read),
            writes=frozenset(writes),
            commits=commits,
            refuses=refuses,
            local=local,
            mutates=mutates or commits,
            summary=doc[0] if doc else "",
        )
        _REGISTRY[name] = StepDef(sig, func, advice)
        return func

    return register


STEP_MODULES_GROUP = "nemoclaw_orchestrator.steps"
"""The entry-point group naming the step libraries; the product's pyproject lists its own
(`orchestrator.steps`) there, so the engine never names a step module."""


def step_module_names() -> list[str]:
    """The step libraries the installed distributions declare, then $NEMOCLAW_STEP_MODULES.

    $NEMOCLAW_STEP_MODULES is a comma-separated list of importable module names; it is how
    tests (and a site's own extensions) add steps without touching the package.
    """
    declared = sorted(entry_points(group=STEP_MODULES_GROUP), key=lambda ep: ep.name)
    extra = (m.strip() for m in os.environ.get("NEMOCLAW_STEP_MODULES", "").split(","))
    return list(dict.fromkeys([ep.value for ep in declared] + [m for m in extra if m]))


def load_step_modules() -> None:
    """Import the step libraries (`step_module_names`) once, the first time a step is looked up."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in step_module_names():
        importlib.import_module(mod)


def registered_steps() -> Mapping[str, StepDef]:
    load_step_modules()
    return dict(_REGISTRY)


def signatures() -> Mapping[str, StepSignature]:
    """What validation checks workflows against."""
    return {name: d.signature for name, d in registered_steps().items()}


def get_step(name: str) -> StepDef | None:
    return registered_steps().get(name)
