"""`nemoclaw runs list|show|resume|abandon`: the run journals under ~/.nemoclaw/runs/."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .echo import fail
from .groups import GROUPS

from ..engine.journal import Journal, load_run, read_numbered, run_logs, status_of, summarize
from ..engine.output import Reporter
from ..kernel.paths import Paths


@click.group("runs", help=GROUPS["runs"].help)
def runs_group() -> None:
    pass


@runs_group.command("list")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="Show at most this many runs (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_cmd(limit: int, as_json: bool) -> None:
    """List recent runs, newest first; interrupted ones are marked resumable."""
    from ..engine.resume import fact_check

    check = fact_check()
    rows = [summarize(p, check) for p in list(run_logs(Paths.from_env().runs_dir))[:limit]]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from ..store.migration_plan import pending_note

    migration = pending_note(Paths.from_env().nemoclaw_dir)  # a migration to OpenShell 0.1 waiting or under way
    if not rows:
        click.echo("  No runs recorded yet.")
        if migration:
            click.echo(migration)
        return
    click.echo(f"  {'RUN':<28}  {'WORKFLOW':<20}  {'RESULT':<24}  {'EXIT':>4}  {'SECONDS':>8}")
    for r in rows:
        result = r["terminal"] or r["status"]
        if r["status"] in ("interrupted", "damaged"):
            result = f"{r['status']} in {r['stopped_in'] or '?'}"
        code = "" if r["exit_code"] is None else str(r["exit_code"])
        dur = "" if r["duration_s"] is None else f"{r['duration_s']:.1f}"
        click.echo(f"  {r['run']:<28}  {r['workflow']:<20}  {result:<24}  {code:>4}  {dur:>8}")
        if r["damaged_lines"]:
            lines = ", ".join(str(d["line"]) for d in r["damaged_lines"][:5])
            click.echo(f"  {'':<28}  (damaged journal lines: {lines}; shown as far as readable)")
    if any(r["resumable"] for r in rows):
        click.echo("  Interrupted runs are resumable: `nemoclaw runs resume ID` (or any backup or upgrade command "
                   "finishes them first); `nemoclaw runs abandon ID` gives one up.")
    if migration:
        click.echo(migration)
    if any(r["status"] == "damaged" for r in rows):
        click.echo("  Damaged runs are not resumed, and backup and upgrade commands refuse while one is there: "
                   "`nemoclaw runs show ID` says which line, `nemoclaw runs abandon ID` prints the commands that "
                   "put its sandbox back by hand and gives it up.")


def _find(run_id: str) -> Path:
    runs_dir = Paths.from_env().runs_dir
    matches = [p for p in run_logs(runs_dir) if p.stem.startswith(run_id)]
    if not matches:
        raise click.UsageError(f"no run '{run_id}' in {runs_dir}")
    if len(matches) > 1:
        raise click.UsageError(f"'{run_id}' matches {len(matches)} runs; give more characters")
    return matches[0]


@runs_group.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the raw events as a JSON list.")
def show_cmd(run_id: str, as_json: bool) -> None:
    """Show the events of run RUN_ID (a unique prefix is enough)."""
    path = _find(run_id)
    numbered, damaged = read_numbered(path)
    if as_json:
        click.echo(json.dumps([e for _, e in numbered], indent=2))
        return
    for _, e in numbered:
        fields = {k: v for k, v in e.items() if k not in ("ts", "run", "event")}
        detail = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
        click.echo(f"  {e.get('ts', '?')}  {e['event']:<14} {detail}")
    from ..engine.resume import fact_check

    _, r = load_run(path, check_fact=fact_check())
    for d in sorted(damaged + [d for d in r.damaged if d not in damaged], key=lambda d: d.line):
        if d.torn:
            click.echo(f"  (line {d.line}: {d.problem}; the run resumes from the line before it)")
        else:
            click.echo(f"  (line {d.line}: damaged, {d.problem})")
    if status_of(r) == "damaged":
        click.echo(f"  Run {path.stem} is damaged: its journal cannot be read whole, so it is not resumed and backup "
                   f"and upgrade commands refuse; `nemoclaw runs abandon {path.stem}` prints the commands that put its "
                   "sandbox back by hand and gives it up.")


def _interrupted(run_id: str):
    from ..engine.resume import fact_check, find_interrupted

    path = _find(run_id)
    found = {i.run_id: i for i in find_interrupted(Paths.from_env())}
    if path.stem not in found:
        status = summarize(path, fact_check())["status"]
        raise click.UsageError(f"run {path.stem} is {status}, not interrupted; nothing to resume or abandon")
    return found[path.stem]


@runs_group.command("resume")
@click.argument("run_id")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
def resume_cmd(run_id: str, debug: bool) -> None:
    """Finish interrupted run RUN_ID where it stopped (under the writer lock)."""
    from ..engine.journal import new_run_id
    from ..engine.resume import resume
    from ..store.errors import LockHeld
    from ..store.lock import WriterLock
    from ..store.staging import describe_sweep, sweep

    from ..engine.resume import damaged_line
    from ..kernel.errors import StoreError

    target = _interrupted(run_id)
    if target.damaged:
        fail(damaged_line(target), 1)
    paths, out = Paths.from_env(), Reporter()
    me = new_run_id()
    try:
        lock = WriterLock(paths.lock_file, me).acquire()
    except LockHeld as held:
        fail(f"  {held}", 75)
    except StoreError as exc:
        fail(f"  {exc}", 1)
    try:
        if lock.broken is not None:
            out.line(lock.broken.message)
        swept = describe_sweep(sweep(paths.staging_root, keep=[me]))
        if swept:
            out.line(swept)
        out.line(f"  Resuming interrupted run {target.run_id} ({target.describe()})...")
        result = resume(target, paths, out, debug=debug, by="runs resume")
    finally:
        lock.release()
    sys.exit(1 if result is None else result.exit_code)


@runs_group.command("abandon")
@click.argument("run_id")
def abandon_cmd(run_id: str) -> None:
    """Give up interrupted run RUN_ID: say what it left behind and how to restore it by hand,
    then mark it abandoned so no command resumes it."""
    from ..engine.resume import abandon_advice

    target = _interrupted(run_id)
    paths = Paths.from_env()
    click.echo(f"  Abandoning {'damaged ' if target.damaged else ''}run {target.run_id} ({target.describe()}).")
    advice = abandon_advice(target, paths)
    for line in advice:
        click.echo(line)
    journal = Journal(target.path, target.run_id, warn=lambda m: click.echo(m, err=True))
    try:
        ok = journal.write("run_abandoned", state=target.state, advice=advice)
    finally:
        journal.close()
    if not ok:
        sys.exit(1)
    click.echo(f"  Run {target.run_id} is marked abandoned; no command will resume it.")
