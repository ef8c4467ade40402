"""YAML workflow files -> WorkflowSpec, with every error pointing at file:line and key.

PyYAML is asked for each mapping's and sequence's line numbers (a thin loader subclass), cattrs
structures the data strictly (no extra keys, no silent str/int coercion), and cattrs' nested
validation errors are walked back to the YAML position of the offending key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import cattrs
import yaml
from cattrs.errors import ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, override

from ..kernel.convert import strict_converter
from ..kernel.errors import DefinitionError
from .spec import StateSpec, WorkflowSpec

PathItem = str | int


class _LineDict(dict):  # type: ignore[type-arg]
    """A mapping that remembers where it and each of its keys are in the file."""

    line: int = 0
    key_lines: dict[Any, int]


class _LineList(list):  # type: ignore[type-arg]
    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    duplicate_keys: list[tuple[Any, int]]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    d = _LineDict()
    d.line = node.start_mark.line + 1
    d.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in d:
            loader.duplicate_keys.append((key, key_node.start_mark.line + 1))
        d[key] = loader.construct_object(value_node, deep=True)
        d.key_lines[key] = key_node.start_mark.line + 1
    return d


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    seq = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    seq.line = node.start_mark.line + 1
    seq.item_lines = [child.start_mark.line + 1 for child in node.value]
    return seq


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _strict_converter() -> cattrs.Converter:
    conv = strict_converter()
    conv.register_structure_hook(
        StateSpec, make_dict_structure_fn(StateSpec, conv, _cattrs_forbid_extra_keys=True, with_=override(rename="with"))
    )
    return conv


_CONVERTER = _strict_converter()


@attrs.frozen
class Located:
    """Turns a key path into `file:line` using the line numbers the loader recorded."""

    file: str
    root: Any

    def line_of(self, path: Sequence[PathItem]) -> int:
        node: Any = self.root
        line = getattr(node, "line", 1)
        for item in path:
            if isinstance(node, _LineDict) and item in node:
                line = node.key_lines.get(item, line)
                node = node[item]
            elif isinstance(node, _LineList) and isinstance(item, int) and 0 <= item < len(node):
                line = node.item_lines[item]
                node = node[item]
            else:
                break
            if isinstance(node, (_LineDict, _LineList)) and not isinstance(item, str):
                line = node.line
        return line

    def error(self, path: Sequence[PathItem], message: str) -> str:
        return f"{self.file}:{self.line_of(path)}: {format_path(path)}: {message}"


def format_path(path: Sequence[PathItem]) -> str:
    if not path:
        return "(top level)"
    out = ""
    for item in path:
        out += f"[{item}]" if isinstance(item, int) else (f".{item}" if out else str(item))
    return out


def _valid_keys(cls: type) -> str:
    return ", ".join(_yaml_key(a.name) for a in attrs.fields(cls) if a.name != "source")


def _yaml_key(name: str) -> str:
    return name[:-1] if name.endswith("_") else name


def _walk_errors(exc: BaseException, path: list[PathItem], loc: Located, out: list[str]) -> None:
    if isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields, key=str):
            if not isinstance(key, str):
                msg = (
                    f"key {key!r} is not a string (YAML 1.1 reads on/off/yes/no as booleans: quote it); "
                    f"valid keys: {_valid_keys(exc.cl)}"
                )
            else:
                msg = f"unknown key '{key}'; valid keys: {_valid_keys(exc.cl)}"
            out.append(loc.error([*path, key], msg))
        return
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            sub_path = list(path)
            for note in getattr(sub, "__notes__", []) or []:
                name = getattr(note, "name", None)
                index = getattr(note, "index", None)
                if name is not None:
                    sub_path.append(_yaml_key(name))
                elif index is not None:
                    sub_path.append(index)
            _walk_errors(sub, sub_path, loc, out)
        return
    if isinstance(exc, KeyError):
        key = exc.args[0] if exc.args else None
        if path and path[-1] == key:
            path = path[:-1]
        out.append(loc.error(path, f"missing required key {key!r}" if key else "missing required key"))
        return
    message = str(exc)
    if path and isinstance(path[-1], bool):
        message = f"key {path[-1]!r} is not a string (YAML 1.1 reads on/off/yes/no as booleans: quote it)"
    elif "required positional argument" in message:
        missing = re.findall(r"'(\w+)'", message)
        message = "missing required key " + ", ".join(f"'{m}'" for m in missing)
    elif isinstance(exc, TypeError) and "not iterable" in message or "has no attribute 'keys'" in message:
        message = "expected a mapping here"
    elif isinstance(exc, ValueError) and "not a valid" in message:
        message = message
    out.append(loc.error(path, message))


def parse_yaml(text: str, file: str) -> tuple[Any, Located]:
    loader = _Loader(text)
    loader.duplicate_keys = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        raise DefinitionError([f"{file}:{line}: malformed YAML: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise DefinitionError([f"{file}:1: malformed YAML: {exc}"]) from None
    finally:
        loader.dispose()
    loc = Located(file, data)
    if loader.duplicate_keys:
        raise DefinitionError(
            [f"{file}:{line}: duplicate key '{key}' (each key may appear once)" for key, line in loader.duplicate_keys]
        )
    return data, loc


def structure(data: Any, loc: Located) -> WorkflowSpec:
    if not isinstance(data, dict):
        raise DefinitionError([f"{loc.file}:1: (top level): expected a mapping with name, summary, initial and states"])
    try:
        return _CONVERTER.structure(data, WorkflowSpec)
    except Exception as exc:  # noqa: BLE001 - every structuring error becomes a located message
        problems: list[str] = []
        _walk_errors(exc, [], loc, problems)
        raise DefinitionError(problems or [loc.error([], str(exc))]) from None


def load_file(path: Path) -> tuple[WorkflowSpec, Located]:
    """Parse and structure one workflow file (no cross-field validation; see validate.py)."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError([f"{file}:1: cannot read workflow file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise DefinitionError([f"{file}:1: not UTF-8 text"]) from None
    data, loc = parse_yaml(text, file)
    if isinstance(data, dict) and "source" in data:
        raise DefinitionError([loc.error(["source"], "unknown key 'source'")])
    spec = structure(data, loc)
    return attrs.evolve(spec, source=path), loc
