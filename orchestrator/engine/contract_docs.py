"""The step table and the fact table of docs/workflows.md, generated from the registry: the
step signatures (engine/registry.py) and the declared facts (engine/facts.py) are the one place
the contract is written; `nemoclaw workflows docs --write docs` rewrites the tables between
their markers, and a test fails when the checked-in ones differ (as diagrams/ is checked)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..workflow.signature import StepOption, StepSignature
from .facts import Fact, declared
from .registry import signatures, step_modules

BUILTIN_PREFIX = "orchestrator."
"""Steps whose module is under this package are built-in (a test's or a site's are not listed)."""

TABLES = ("steps", "facts")
COMMAND = "nemoclaw workflows docs --write docs"


def begin_marker(table: str) -> str:
    return f"<!-- generated {table} table: `{COMMAND}` rewrites it; do not edit by hand -->"


def end_marker(table: str) -> str:
    return f"<!-- end of generated {table} table -->"


def builtin_steps() -> dict[str, StepSignature]:
    modules = step_modules()
    return {name: sig for name, sig in sorted(signatures().items())
            if modules.get(name, "").startswith(BUILTIN_PREFIX)}


def _code(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in sorted(names))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _type_name(t: Any) -> str:
    if isinstance(t, type) and not getattr(t, "__args__", None):
        return t.__name__
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", str(t))


def _kinds(sig: StepSignature) -> list[str]:
    kinds = [k for k in ("local", "guards", "refuses") if getattr(sig, k)]
    if sig.commits:
        kinds.append("commits")
    elif sig.mutates:
        kinds.append("mutates")
    return kinds


def _option(name: str, o: StepOption) -> str:
    kind = "|".join(o.choices) if o.choices else _type_name(o.type)
    if o.required:
        return f"`{name}` ({kind}, required)"
    return f"`{name}` ({kind}, default `{str(o.default).lower() if isinstance(o.default, bool) else o.default}`)" \
        if o.default is not None else f"`{name}` ({kind})"


def _param(name: str, kind: type, default: Any) -> str:
    if default is None:
        return f"`{name}` ({_type_name(kind)})"
    shown = str(default).lower() if isinstance(default, bool) else str(default).strip()
    return f"`{name}` ({_type_name(kind)}, default `{shown}`)"


def _facts(sig: StepSignature) -> str:
    parts = []
    if sig.reads:
        parts.append("reads " + _code(sig.reads))
    if sig.may_read:
        parts.append("may read " + _code(sig.may_read))
    if sig.writes:
        parts.append("writes " + _code(sig.writes))
    return "; ".join(parts) or "-"


def _inputs(sig: StepSignature) -> str:
    parts = [_option(n, o) for n, o in sorted(sig.options.items())]
    if sig.params:
        parts.append("with: " + ", ".join(_param(n, t, sig.param_defaults.get(n)) for n, t in sorted(sig.params.items())))
    return "; ".join(parts) or "-"


def step_table(steps: Mapping[str, StepSignature] | None = None) -> str:
    steps = builtin_steps() if steps is None else steps
    rows = ["| step | outcomes | facts | options; `with:` | notes |", "|---|---|---|---|---|"]
    for name, sig in steps.items():
        outcomes = _code(sig.outcomes) or "none (always fails)"
        kinds = _kinds(sig)
        rows.append(f"| `{name}` | {outcomes}{'; ' + ', '.join(kinds) if kinds else ''} | {_facts(sig)} | "
                    f"{_cell(_inputs(sig))} | {_cell(sig.doc) or '-'} |")
    return "\n".join(rows) + "\n"


def fact_table(steps: Mapping[str, StepSignature] | None = None, facts: Mapping[str, Fact[Any]] | None = None) -> str:
    """Every fact a built-in step reads or writes, with its type and its writers and readers."""
    steps = builtin_steps() if steps is None else steps
    facts = declared() if facts is None else facts
    used = set().union(*(s.reads | s.may_read | s.writes for s in steps.values())) if steps else set()
    rows = ["| fact | type | written by | read by | what it is |", "|---|---|---|---|---|"]
    for name in sorted(used):
        fd = facts.get(name)
        if fd is None:
            continue
        writers = _code(n for n, s in steps.items() if name in s.writes) or "a foreach state (`results:`)"
        readers = [f"`{n}`" for n, s in sorted(steps.items()) if name in s.reads]
        readers += [f"`{n}` (may)" for n, s in sorted(steps.items()) if name in s.may_read]
        kind = _cell(_type_name(fd.type)) + (" (in `--json`)" if fd.report else "")
        rows.append(f"| `{name}` | {kind} | {writers} | {', '.join(readers) or '-'} | {_cell(fd.doc)} |")
    return "\n".join(rows) + "\n"


def generated(table: str) -> str:
    return step_table() if table == "steps" else fact_table()


def rewrite(text: str, file: str) -> str:
    """`text` (a markdown file) with each generated table between its markers replaced by the
    current one; ValueError naming `file` when a marker is missing."""
    for table in TABLES:
        begin, end = begin_marker(table), end_marker(table)
        start, stop = text.find(begin), text.find(end)
        if start < 0 or stop < start:
            raise ValueError(f"{file}: no generated {table} table (the lines `{begin}` ... `{end}`)")
        text = text[:start + len(begin)] + "\n\n" + generated(table) + "\n" + text[stop:]
    return text
