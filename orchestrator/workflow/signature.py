"""What the workflow language knows of a step: its signature, which validation checks a state
against. The callable itself lives in the engine's registry (engine/registry.py).

A signature says which outcomes the step can end with, which `with:` parameters it takes and
their types, which facts it reads (must have been written by an earlier state on every path),
may read (used when present), and writes (on every outcome but an error), and what kind of
step it is: `local` (reads local files only: may run before a guard's preflight), `refuses`,
`commits` (moves data into place: never retried), `mutates` (changes the world: its state
must say what a resumed run does there).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen
class StepSignature:
    name: str
    outcomes: frozenset[str] = frozenset({"next"})
    params: Mapping[str, type] = attrs.field(factory=dict)
    reads: frozenset[str] = frozenset()
    may_read: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    commits: bool = False
    refuses: bool = False
    local: bool = False
    mutates: bool = False


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
