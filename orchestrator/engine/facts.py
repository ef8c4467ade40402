"""Facts: the typed data one state hands to later states, and what the journal records.

A fact is declared once (`declare(name, type, doc)`; the built-in ones are all on one page,
steps/facts.py), which returns its handle: a `Fact[T]` that steps pass to `ctx.get(FACT)` and
`ctx.set(FACT, value)`, so a type checker sees `ctx.get(SANDBOX_LIST)` is a `SandboxList`
(`ctx.fact(name)` and `ctx.put(name, value)` do the same by name, untyped). It is written
by the steps whose signature lists it under `writes`, and read by those that list it under
`reads`/`may_read`. The loader checks that every read fact is written
by an earlier state on every path; at run time `ctx.put` checks the value's type and
`ctx.fact` refuses undeclared reads, so the declarations cannot drift from the code.

Facts are (un)structured with one cattrs converter, so the journal can record them as JSON and
a new process can rebuild a run's facts from the journal alone. It is the strict converter of
kernel/convert.py: nothing is coerced (`"no"` is not a bool, `null` not a string, `[1]` not
true), so a fact that does not fit its type makes the journal damaged instead of being guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn

from ..kernel.convert import describe, strict_converter
from ..kernel.errors import StepError


T = TypeVar("T")


@attrs.frozen
class Fact(Generic[T]):
    """A declared fact, and the typed handle steps read and write it by (`ctx.get`, `ctx.set`)."""

    name: str
    type: Any
    doc: str
    # Part of the run's --json summary (reports meant for scripts).
    report: bool = False


FactDef = Fact  # the name earlier code knows it by


_FACTS: dict[str, Fact[Any]] = {}


@overload
def declare(name: str, type_: type[T], doc: str, *, report: bool = False) -> Fact[T]: ...
@overload
def declare(name: str, type_: Any, doc: str, *, report: bool = False) -> Fact[Any]: ...
def declare(name: str, type_: Any, doc: str, *, report: bool = False) -> Fact[Any]:
    """Declare a fact (idempotent for the same declaration; a different one is a bug) and
    return its handle. A type a checker cannot read as a class (`str | None`) gives a
    `Fact[Any]`: annotate the handle (`CLI_VERSION: Fact[str | None] = declare(...)`)."""
    fd: Fact[Any] = Fact(name, type_, doc, report)
    old = _FACTS.get(name)
    if old is not None and old != fd:
        raise ValueError(f"fact '{name}' is declared twice, differently")
    _FACTS[name] = fd
    return fd


def declared() -> Mapping[str, Fact[Any]]:
    return dict(_FACTS)


def _converter() -> cattrs.Converter:
    conv = strict_converter()

    def _path(v: Any, _: type) -> Path:
        if not isinstance(v, str):
            raise TypeError(f"expected a path (a string), got {describe(v)}")
        return Path(v)

    conv.register_unstructure_hook(Path, str)
    conv.register_structure_hook(Path, _path)

    # A field an older release journaled and this one no longer has is named by its class
    # (`RETIRED_FIELDS`), so that release's interrupted run still resumes; any other unknown
    # key is damage.
    def _retiring(t: Any) -> bool:
        return attrs.has(t) and bool(getattr(t, "RETIRED_FIELDS", ()))

    def _retired_factory(t: Any) -> Any:
        base = make_dict_structure_fn(t, conv, _cattrs_forbid_extra_keys=True)
        retired = frozenset(t.RETIRED_FIELDS)

        def _structure(v: Any, _: Any) -> Any:
            if isinstance(v, dict):
                v = {k: x for k, x in v.items() if k not in retired}
            return base(v, t)

        return _structure

    conv.register_structure_hook_factory(_retiring, _retired_factory)
    return conv


def _why(exc: Exception) -> str:
    """One line for why a value does not fit (our hooks' own words where they said it)."""
    from cattrs.v import format_exception

    def fmt(e: BaseException, t: Any) -> str:
        return str(e) if isinstance(e, TypeError) and str(e).startswith("expected ") else format_exception(e, t)

    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc, format_exception=fmt))
    return str(exc)


CONVERTER = _converter()


def dump(name: str, value: Any) -> Any:
    """The JSON-able form of a fact's value, for the journal."""
    fd = _FACTS[name]
    return CONVERTER.unstructure(value, fd.type)


def load(name: str, raw: Any) -> Any:
    """A fact's value from its journal form; raises ValueError when it does not fit its type."""
    fd = _FACTS.get(name)
    if fd is None:
        raise ValueError(f"unknown fact '{name}'")
    try:
        return CONVERTER.structure(raw, fd.type)
    except Exception as exc:  # noqa: BLE001 - cattrs raises many types; all mean "does not fit"
        raise ValueError(f"fact '{name}' does not fit its type: {_why(exc)}") from None


def check_value(name: str, value: Any) -> None:
    """Raise StepError when `value` cannot be a value of fact `name` (a bug in a step)."""
    fd = _FACTS.get(name)
    if fd is None:
        raise StepError(f"internal error: fact '{name}' is not declared")
    try:
        raw = CONVERTER.unstructure(value, fd.type)
        CONVERTER.structure(raw, fd.type)
    except Exception as exc:  # noqa: BLE001
        raise StepError(f"internal error: a value for fact '{name}' does not fit its type: {_why(exc)}") from None
