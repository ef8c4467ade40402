"""The step registry: Python callables that workflow YAML refers to by name (`do: <name>`).

A step is `func(ctx: RunContext) -> Outcome | str | None`:
  * `None` means the outcome `next`;
  * a `str` names the outcome (`next`, or a declared branch such as `empty`).
It reads and writes facts (`ctx.get(FACT)`, `ctx.set(FACT, value)` by typed handle, or
`ctx.fact(name)`, `ctx.put(name, value)` by name) and reads workflow options (`ctx.option(name)`,
with the default its signature declares), only those its signature declares; it raises `Refusal` to refuse and `StepError` (or any exception) to fail.

The signature (workflow/signature.py) is what the loader checks a workflow against: outcomes,
typed `with:` parameters, the workflow options read, the facts read and written, and whether the step commits, refuses,
is local or changes the world (then its state must declare `resume:`).

A step library registers its steps one of two ways:
  * `@step(name, outcomes=..., reads=..., ...)` on the callable: signature and callable at
    once, when the library's module is imported (a small library, the tests' steps);
  * `declare(name, module, outcomes=..., ...)` in the library's module, and
    `@implements(name)` on the callable in `module`: the signatures are known (and every
    workflow checked) without importing any step's code, and `module` is imported the first
    time the step is looked up to run (the built-in library, steps/library.py). A refused
    `backup-all` so imports the registry and preflight steps' modules, not the backup code.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..workflow.signature import StepOption, StepSignature
from .facts import Fact

if TYPE_CHECKING:
    from .context import RunContext


@attrs.frozen
class Outcome:
    name: str = "next"


StepFunc = Callable[["RunContext"], "Outcome | str | None"]
Advice = Callable[[dict[str, Any], str], list[str]]


@attrs.frozen
class StepDef:
    signature: StepSignature
    func: StepFunc
    # For a run abandoned in a state of this step: the lines telling a person what to do by
    # hand, from the run's facts and the state's name (see engine/resume.py).
    advice: Advice | None = None

    def __getattr__(self, item: str) -> Any:  # name, outcomes, commits, ... of the signature
        return getattr(self.signature, item)


_SIGNATURES: dict[str, StepSignature] = {}
_MODULES: dict[str, str] = {}  # a declared step -> the module that implements it
_IMPLS: dict[str, tuple[StepFunc, Advice | None]] = {}
_LOADED = False


FactRef = str | Fact[Any]
"""A fact in a signature: its name, or its handle (engine/facts.py `declare`)."""


def _names(facts: Iterable[FactRef]) -> frozenset[str]:
    return frozenset(f if isinstance(f, str) else f.name for f in facts)


def _signature(
    name: str,
    *,
    outcomes: Iterable[str] = ("next",),
    params: Mapping[str, type | StepOption] | None = None,
    options: Mapping[str, StepOption] | None = None,
    reads: Iterable[FactRef] = (),
    may_read: Iterable[FactRef] = (),
    writes: Iterable[FactRef] = (),
    commits: bool = False,
    refuses: bool = False,
    local: bool = False,
    mutates: bool = False,
    guards: bool = False,
    doc: str = "",
) -> StepSignature:
    """The keywords `step` and `declare` take: the step's signature (workflow/signature.py).
    `options` are the workflow options the step reads (`ctx.option`), with their type, default
    and help; a `with:` parameter is given by its type or, with a default (`ctx.param`), as a
    StepOption; facts are given by name or by handle."""
    given = dict(params or {})
    return StepSignature(
        name=name,
        outcomes=frozenset(outcomes),
        params={k: v.type if isinstance(v, StepOption) else v for k, v in given.items()},
        param_defaults={k: v.default for k, v in given.items() if isinstance(v, StepOption) and v.default is not None},
        options=dict(options or {}),
        reads=_names(reads),
        may_read=_names(may_read),
        writes=_names(writes),
        commits=commits,
        refuses=refuses,
        local=local,
        mutates=mutates or commits,
        guards=guards,
        doc=doc,
    )


def step(name: str, *, advice: Advice | None = None, **signature: Any) -> Callable[[StepFunc], StepFunc]:
    """Register `func` under `name` with its signature (the keywords of `_signature`:
    outcomes, params, options, reads, may_read, writes, commits, refuses, local, mutates,
    guards, doc)."""
    sig = _signature(name, **signature)

    def register(func: StepFunc) -> StepFunc:
        _SIGNATURES[name] = sig
        _MODULES.pop(name, None)
        _IMPLS[name] = (func, advice)
        return func

    return register


def declare(name: str, module: str, **signature: Any) -> None:
    """Declare step `name`'s signature now (the keywords of `_signature`); its callable is
    `@implements(name)` in `module`, imported the first time the step is looked up (`get_step`)."""
    _SIGNATURES[name] = _signature(name, **signature)
    _MODULES[name] = module
    _IMPLS.pop(name, None)


def implements(name: str, *, advice: Advice | None = None) -> Callable[[StepFunc], StepFunc]:
    """The callable of step `name`, declared (`declare`) with this module as its module."""

    def register(func: StepFunc) -> StepFunc:
        module = _MODULES.get(name)
        if module != func.__module__:
            where = "is not declared" if module is None else f"is declared in module {module}"
            raise ValueError(f"step '{name}' {where}, not in {func.__module__}")
        _IMPLS[name] = (func, advice)
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


def signatures() -> Mapping[str, StepSignature]:
    """What validation checks workflows against: every step's signature (no step module of a
    declared step is imported)."""
    load_step_modules()
    return dict(_SIGNATURES)


def step_modules() -> Mapping[str, str]:
    """Each step's module: the one declared for it, or its callable's (without importing any)."""
    load_step_modules()
    modules = {name: func.__module__ for name, (func, _) in _IMPLS.items()}
    modules.update(_MODULES)
    return modules


def get_step(name: str) -> StepDef | None:
    """Step `name` ready to run (its module imported if it was only declared), None if unknown."""
    sig = signatures().get(name)
    if sig is None:
        return None
    if name not in _IMPLS:
        module = _MODULES[name]
        importlib.import_module(module)
        if name not in _IMPLS:
            raise LookupError(f"step '{name}' is declared with module {module}, which does not implement it")
    func, advice = _IMPLS[name]
    return StepDef(sig, func, advice)
