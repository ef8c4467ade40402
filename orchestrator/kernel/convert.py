"""The one strict cattrs converter, for everything read from a file a person or another program
wrote (workflow YAML, agent definitions, backup manifests).

Strict means: an unknown key is an error, and nothing is coerced: a `str` field takes only a
string, an `int` only an integer (never a bool), a `float` an integer or a number (never a
bool), a `bool` only true/false. Each module registers its own class hooks (renames) on top.
"""

from __future__ import annotations

from typing import Any

import cattrs


def describe(v: Any) -> str:
    """A value as an error message names it: `a mapping`, `a list`, `nothing (null)`, `int 3`."""
    if v is None:
        return "nothing (null)"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return f"{type(v).__name__} {v!r}"


def strict_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def _str(v: Any, _: type) -> str:
        if not isinstance(v, str):
            raise TypeError(f"expected a string, got {describe(v)}")
        return v

    def _int(v: Any, _: type) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"expected an integer, got {describe(v)}")
        return v

    def _float(v: Any, _: type) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"expected a number, got {describe(v)}")
        return float(v)

    def _bool(v: Any, _: type) -> bool:
        if not isinstance(v, bool):
            raise TypeError(f"expected true or false, got {describe(v)}")
        return v

    conv.register_structure_hook(str, _str)
    conv.register_structure_hook(int, _int)
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(bool, _bool)
    conv.register_structure_hook(Any, lambda v, _: v)
    return conv
