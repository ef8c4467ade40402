"""`nemoclaw gateway check`: a read-only doctor for the gateway schema preflight.

It runs exactly the probes the `preflight` step runs and shows what was observed next to what
was expected, so a refused `backup-all` can be understood without reading code. It starts,
selects and writes nothing. Exit 1 on drift (as the refused command would), else 0.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .openshell import (
    DEFAULT_GATEWAY,
    Observation,
    OpenShellNotFound,
    backup_all_wording,
    decide,
    format_diagnosis,
    observe,
)
from .openshell.drift import host_process_drift, image_drift, served_version_drift
from .paths import Paths


def _mark(ok: bool | None) -> str:
    return {True: "ok", False: "DRIFT", None: "-"}[ok]


def _same(expected: str | None, observed: str | None) -> bool | None:
    if not expected or not observed:
        return None
    return expected == observed


def observation_doc(obs: Observation) -> dict[str, Any]:
    """The observation as plain JSON-able data (the `--json` document, minus the verdict)."""
    m, c = obs.marker, obs.cluster
    return {
        "gateway": obs.gateway,
        "cli": {"path": obs.openshell_bin, "version": obs.cli_version},
        "gateway_binary": {"path": obs.gateway_bin, "version": obs.gateway_bin_version},
        "marker": None
        if m is None
        else {"pid": m.pid, "alive": obs.marker_live, "gateway_bin": m.gateway_bin, "endpoint": m.endpoint},
        "served": {
            "version": obs.served_version,
            "endpoint": obs.served_endpoint,
            "source": obs.served_source,
            "health_port": obs.health_port,
        },
        "cluster": None
        if c is None
        else {"name": c.name, "image": c.image, "version": c.version, "running": c.running, "active": obs.cluster_active},
        "gateway_healthy": obs.probes.alive,
    }


SERVED_SOURCES = {"grpc": "gRPC Health", "readyz": "/readyz", "status": "`openshell status`"}
"""How each served-version source is named to the user."""


def _rows(obs: Observation) -> list[tuple[str, str, str, str]]:
    """(check, observed, expected, result) rows for the table."""
    exp = obs.cli_version or "unknown"
    m, c = obs.marker, obs.cluster
    rows = [("OpenShell CLI", f"{obs.openshell_bin} ({obs.cli_version or 'unknown'})", "-", "-")]
    rows.append((
        "Gateway binary",
        f"{obs.gateway_bin or 'not found'} ({obs.gateway_bin_version or 'unknown'})",
        exp,
        "DRIFT" if host_process_drift(obs) else _mark(_same(obs.cli_version, obs.gateway_bin_version)),
    ))  # fmt: skip
    rows.append((
        "Runtime marker",
        "absent" if m is None else f"pid {m.pid} ({'live gateway' if obs.marker_live else 'not running'})",
        "-",
        "-",
    ))  # fmt: skip
    served = (
        f"{obs.served_endpoint} ({obs.served_version}, via {SERVED_SOURCES.get(obs.served_source or '', obs.served_source)})"
        if obs.served_version
        else "unknown"
    )
    rows.append(("Served version", served, exp, "DRIFT" if served_version_drift(obs) else _mark(_same(obs.cli_version, obs.served_version))))
    cluster = "none" if c is None else f"{c.image} ({'running' if c.running else 'stopped'}, {'active' if obs.cluster_active else 'inactive'})"
    rows.append(("Cluster image", cluster, exp, "DRIFT" if image_drift(obs) else "-"))
    rows.append(("Gateway status", "healthy" if obs.probes.alive else "not healthy (not connected, or its port does not accept)", "healthy", "-"))
    return rows


def _print_plain(rows: list[tuple[str, str, str, str]], verdict: str) -> None:
    width = max(len(r[0]) for r in rows)
    for check, observed, expected, result in rows:
        wanted = f"  (expected {expected})" if expected != "-" else ""
        verdict_mark = f"  {result}" if result != "-" else ""
        click.echo(f"  {check.ljust(width)}  {observed}{wanted}{verdict_mark}")
    click.echo(f"  Verdict: {verdict}")


def _print_rich(rows: list[tuple[str, str, str, str]], verdict: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="OpenShell gateway schema check")
    for col in ("Check", "Observed", "Expected", "Result"):
        table.add_column(col)
    for check, observed, expected, result in rows:
        style = "bold red" if result == "DRIFT" else ("green" if result == "ok" else None)
        table.add_row(check, observed, expected, result, style=style)
    console = Console()
    console.print(table)
    console.print(f"Verdict: [{'bold red' if verdict != 'ok' else 'green'}]{verdict}[/]")


@click.group("gateway")
def gateway_group() -> None:
    """Inspect the NemoClaw OpenShell gateway."""


@gateway_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of a table.")
@click.option("--gateway", "gateway", default=DEFAULT_GATEWAY, show_default=True, help="Gateway name.")
def check(as_json: bool, gateway: str) -> None:
    """Compare the installed OpenShell CLI with the running gateway (read-only)."""
    try:
        obs = observe(gateway, state_dir=Paths.from_env().gateway_state_dir)
    except OpenShellNotFound as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    issue = decide(obs)
    verdict = "ok" if issue is None else issue.kind
    if as_json:
        doc = {"verdict": verdict, "drift": issue is not None, **observation_doc(obs)}
        doc["diagnosis"] = format_diagnosis(issue, backup_all_wording()) if issue else []
        click.echo(json.dumps(doc, indent=2))
    else:
        rows = _rows(obs)
        (_print_rich if sys.stdout.isatty() else _print_plain)(rows, verdict)
        if issue is not None:
            for line in format_diagnosis(issue):
                click.echo(line, err=True)
    sys.exit(1 if issue is not None else 0)
