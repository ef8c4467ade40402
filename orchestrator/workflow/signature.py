"""What the workflow language knows of a step: its signature, which validation checks a state
against. The callable itself lives in the engine's registry (engine/registry.py).

A signature says which outcomes the step can end with, which `with:` parameters it takes and
their types, which workflow options it reads (`StepOption`: type, default, help; the loader
checks each workflow that uses the step declares them compatibly), which facts it reads (must have been written by an earlier state on every path),
may read (used when present), and writes (on every outcome but an error), and what kind of
step it is: `local` (reads local files only: may run before a guard's preflight), `refuses`,
`commits` (moves data into place: never retried), `mutates` (changes the world: its state
must say what a resumed run does there), `guards` (the guard's check: a guarded workflow runs
it before anything else, and a resumed run runs it again). `doc` is its line in the generated
step table (docs/workflows.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class StepOption:
    """A workflow option (or argument) a step reads through `ctx.option(name)`.

    A workflow that does not declare it gives the step `default`; one that declares it must
    give it this `type` (a `choice` option is a `str`; its choices must be among `choices`, when
    the step names them). A `required` option has no sensible default (the sandbox a rebuild
    works on): a workflow that uses the step without declaring it does not load."""

    type: type = str
    default: Any = None
    help: str = ""
    required: bool = False
    choices: tuple[str, ...] = ()


@attrs.frozen
class StepSignature:
    name: str
    outcomes: frozenset[str] = frozenset({"next"})
    params: Mapping[str, type] = attrs.field(factory=dict)
    options: Mapping[str, StepOption] = attrs.field(factory=dict)
    # The value a `with:` parameter has where the state does not give it (`ctx.param`).
    param_defaults: Mapping[str, Any] = attrs.field(factory=dict)
    reads: frozenset[str] = frozenset()
    may_read: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    commits: bool = False
    refuses: bool = False
    local: bool = False
    mutates: bool = False
    guards: bool = False
    doc: str = attrs.field(default="", eq=False)


PARAM_TYPE_NAMES: dict[type, str] = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def param_type_error(value: object, expected: type) -> str | None:
    """Why `value` is not a valid `with:` value of type `expected` (None when it is)."""
    if expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return None
    if expected is int and isinstance(value, bool):
        return f"expected {PARAM_TYPE_NAMES[int]}, got {value!r}"
    if isinstance(value, expected):
        return None
    return f"expected {PARAM_TYPE_NAMES.get(expected, expected.__name__)}, got {type(value).__name__} {value!r}"
