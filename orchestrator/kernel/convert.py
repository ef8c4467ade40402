"""The one strict cattrs converter, for everything read from a file a person or another program
wrote (workflow YAML, agent definitions, backup manifests).

Strict means: an unknown key is an error, and nothing is coerced: a `str` field takes only a
string, an `int` only an integer (never a bool), a `float` an integer or a number (never a
bool), a `bool` only true/false, a `list[...]` only a list (never a string or a mapping, whose
characters or keys it would otherwise take), a `dict[...]` only a mapping. Each module
registers its own class hooks (renames) on top.
"""

from __future__ import annotations

from typing import Any

import cattrs
from cattrs.cols import is_mapping, is_mutable_sequence, list_structure_factory, mapping_structure_factory


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

    def _list_factory(t: Any, c: cattrs.Converter) -> Any:
        base = list_structure_factory(t, c)

        def _list(v: Any, _: Any) -> Any:
            if not isinstance(v, list):
                raise TypeError(f"expected a list, got {describe(v)}")
            return base(v, t)

        return _list

    def _dict_factory(t: Any, c: cattrs.Converter) -> Any:
        base = mapping_structure_factory(t, c)

        def _dict(v: Any, _: Any) -> Any:
            if not isinstance(v, dict):
                raise TypeError(f"expected a mapping, got {describe(v)}")
            return base(v, t)

        return _dict

    conv.register_structure_hook_factory(is_mutable_sequence, _list_factory)
    conv.register_structure_hook_factory(is_mapping, _dict_factory)
    return conv
