"""`nemoclaw runs list|show`: read back the event logs under ~/.nemoclaw/runs/."""

from __future__ import annotations

import json

import click

from .engine.events import read_events, run_logs, summarize
from .paths import Paths


@click.group("runs")
def runs_group() -> None:
    """Past runs and their event logs."""


@runs_group.command("list")
@click.option("--limit", type=int, default=20, show_default=True, help="Show at most this many runs (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_cmd(limit: int, as_json: bool) -> None:
    """List recent runs, newest first."""
    rows = [summarize(p) for p in list(run_logs(Paths.from_env().runs_dir))[:limit]]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("  No runs recorded yet.")
        return
    click.echo(f"  {'RUN':<24}  {'WORKFLOW':<20}  {'RESULT':<12}  {'EXIT':>4}  {'SECONDS':>8}")
    for r in rows:
        result = r["terminal"] or r["status"]
        code = "" if r["exit_code"] is None else str(r["exit_code"])
        dur = "" if r["duration_s"] is None else f"{r['duration_s']:.1f}"
        click.echo(f"  {r['run']:<24}  {r['workflow']:<20}  {result:<12}  {code:>4}  {dur:>8}")


@runs_group.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the raw events as a JSON list.")
def show_cmd(run_id: str, as_json: bool) -> None:
    """Show the events of run RUN_ID (a unique prefix is enough)."""
    runs_dir = Paths.from_env().runs_dir
    matches = [p for p in run_logs(runs_dir) if p.stem.startswith(run_id)]
    if not matches:
        raise click.UsageError(f"no run '{run_id}' in {runs_dir}")
    if len(matches) > 1:
        raise click.UsageError(f"'{run_id}' matches {len(matches)} runs; give more characters")
    events = read_events(matches[0])
    if as_json:
        click.echo(json.dumps(events, indent=2))
        return
    for e in events:
        fields = {k: v for k, v in e.items() if k not in ("ts", "run", "event")}
        detail = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
        click.echo(f"  {e['ts']}  {e['event']:<14} {detail}")
