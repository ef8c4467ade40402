"""`nemoclaw workflows list|show|validate|graph|docs`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from .echo import fail
from .groups import GROUPS

from ..kernel.errors import DefinitionError
from ..engine.loader import load_workflow
from ..workflow.discover import builtin_dir, find_all

if TYPE_CHECKING:
    from ..workflow.signature import StepOption
    from ..workflow.spec import WorkflowSpec


@click.group("workflows", help=GROUPS["workflows"].help)
def workflows_group() -> None:
    pass


@workflows_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_cmd(as_json: bool) -> None:
    """List the workflows on the workflow path (built-in first)."""
    found = find_all()
    rows: list[dict[str, Any]] = []
    for name, f in sorted(found.items()):
        try:
            spec = load_workflow(f.path, set(found))
            summary, guarded, valid = spec.summary, spec.guard is not None, True
        except DefinitionError as exc:
            summary, guarded, valid = f"INVALID: {len(exc.problems)} problem(s); run `nemoclaw workflows validate {f.path}`", False, False
        rows.append({"name": name, "summary": summary, "guarded": guarded, "valid": valid, "builtin": f.builtin,
                     "path": str(f.path), "shadowed": [str(p) for p in f.shadowed]})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("  No workflows found.")
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        tags = ("guarded" if r["guarded"] else "") + ("" if r["builtin"] else ", user" if r["guarded"] else "user")
        click.echo(f"  {r['name']:<{width}}  {r['summary']}" + (f"  [{tags}]" if tags else ""))
        for p in r["shadowed"]:
            click.echo(f"  {'':<{width}}  (ignored: {p} has the same name and comes later on the path)")


@workflows_group.command("show")
@click.argument("name")
def show_cmd(name: str) -> None:
    """Show a workflow's states, steps and routes."""
    found = find_all()
    if name not in found:
        raise click.UsageError(f"unknown workflow '{name}'; known: {', '.join(sorted(found))}")
    spec = _load_or_exit(found[name].path, set(found))
    click.echo(f"{spec.name}: {spec.summary}")
    click.echo(f"  file: {spec.source}")
    if spec.guard:
        click.echo(f"  guarded: preflight wording '{spec.guard.action}' / '{spec.guard.command}'")
    for oname, o in spec.options.items():
        click.echo(f"  option --{oname.replace('_', '-')} ({o.type}, default {o.default!r}): {o.help}")
    for oname, step, o in _fixed_options(spec):
        click.echo(f"  fixed {oname} = {o.default!r} (no --{oname.replace('_', '-')} here; step '{step}' reads this "
                   f"default): {o.help}")
    click.echo(f"  initial: {spec.initial}")
    for sname, s in spec.all_states.items():
        if s.terminal:
            click.echo(f"  {sname}: terminal, exit {spec.exit_code(sname)}")
            continue
        what = f"do {s.do}" if s.do else f"foreach {s.foreach.items} -> {s.foreach.workflow}"
        routes = ", ".join(f"{k} -> {v}" for k, v in s.routes().items())
        retry = f"; retry {s.retry.attempts}x on {', '.join(s.retry.errors)}" if s.retry else ""
        click.echo(f"  {sname}: {what}; {routes}{retry}")


@workflows_group.command("validate")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
def validate_cmd(files: tuple[Path, ...]) -> None:
    """Validate workflow FILES (default: every workflow on the path). Exit 2 on any problem."""
    found = find_all()
    known = set(found) | {f.stem for f in files}
    targets = list(files) or [f.path for f in found.values()]
    bad = 0
    for path in targets:
        try:
            load_workflow(path, known)
            click.echo(f"  ✓ {path}")
        except DefinitionError as exc:
            bad += 1
            for p in exc.problems:
                click.echo(p, err=True)
    if bad:
        fail(f"  {bad} of {len(targets)} workflow file(s) invalid.", 2)


@workflows_group.command("graph")
@click.argument("name", required=False)
@click.option("--markdown", is_flag=True, help="Wrap the diagram as diagrams/<name>.md is written.")
@click.option("--write", "write_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write <DIR>/<name>.md for NAME, or for every built-in workflow.")
def graph_cmd(name: str | None, markdown: bool, write_dir: Path | None) -> None:
    """Print a workflow's state diagram as mermaid (no graphviz needed)."""
    from ..workflow.graph import diagram_markdown, mermaid  # transitions' graph extension is slow to import

    found = find_all()
    if name is None and write_dir is None:
        raise click.UsageError("give a workflow NAME, or --write DIR for every built-in workflow")
    names = [name] if name else sorted(n for n, f in found.items() if f.path.parent == builtin_dir())
    for n in names:
        if n not in found:
            raise click.UsageError(f"unknown workflow '{n}'; known: {', '.join(sorted(found))}")
        spec = _load_or_exit(found[n].path, set(found))
        if write_dir is not None:
            write_dir.mkdir(parents=True, exist_ok=True)
            (write_dir / f"{n}.md").write_text(diagram_markdown(spec), encoding="utf-8")
            click.echo(f"  wrote {write_dir / f'{n}.md'}")
        else:
            click.echo(diagram_markdown(spec) if markdown else mermaid(spec), nl=False)


@workflows_group.command("docs")
@click.option("--write", "write_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Rewrite the generated tables in <DIR>/workflows.md.")
def docs_cmd(write_dir: Path | None) -> None:
    """Print the step and fact tables of docs/workflows.md, generated from the step registry."""
    from ..engine.contract_docs import generated, rewrite

    if write_dir is None:
        click.echo(generated("steps") + "\n" + generated("facts"), nl=False)
        return
    target = write_dir / "workflows.md"
    try:
        text = target.read_text(encoding="utf-8")
        target.write_text(rewrite(text, str(target)), encoding="utf-8")
    except (OSError, ValueError) as exc:
        fail(f"  Cannot write the generated tables: {exc}", 2)
    click.echo(f"  wrote {target}")


def _fixed_options(spec: "WorkflowSpec") -> "Iterator[tuple[str, str, StepOption]]":
    """(option, step, declaration) for each option a step of `spec` reads that `spec` does not
    declare: the step gets its declared default."""
    from ..engine.registry import signatures

    sigs, taken, seen = signatures(), set(spec.options) | {a.name for a in spec.arguments}, set()
    for state in spec.states.values():
        sig = sigs.get(state.do or "")
        if sig is None:
            continue
        for name, o in sorted(sig.options.items()):
            if name not in taken and name not in seen:
                seen.add(name)
                yield name, sig.name, o


def _load_or_exit(path: Path, known: set[str]):
    try:
        return load_workflow(path, known)
    except DefinitionError as exc:
        for p in exc.problems:
            click.echo(p, err=True)
        sys.exit(2)

