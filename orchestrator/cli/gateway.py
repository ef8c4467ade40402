"""`nemoclaw gateway check`: a read-only doctor for the gateway schema preflight.

It runs exactly the probes the `preflight` step runs and shows what was observed next to what
was expected, so a refused `backup-all` can be understood without reading code. It starts,
selects and writes nothing. Exit 1 on drift (as the refused command would).

The preflight fails open on what it cannot see; a doctor must not. `Verdict: ok` (exit 0) only
when everything was looked at: the CLI's version, a healthy gateway serving a known version,
the Docker engine (for the cluster container), a readable runtime marker whose endpoint
answers. Otherwise the verdict is `could not check`, with each reason, and exit 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from .echo import fail
from .groups import GROUPS

from ..adapters.openshell import (
    DEFAULT_GATEWAY,
    Observation,
    OpenShellNotFound,
    backup_all_wording,
    decide,
    format_diagnosis,
    observe,
)
from ..adapters.openshell.drift import host_process_drift, image_drift, served_version_drift
from ..adapters.openshell.health import accepts_connections
from ..adapters.openshell.marker import MARKER_NAME
from ..kernel.paths import Paths


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


COULD_NOT_CHECK = "could not check"


def _docker_problem(timeout: float | None = None) -> str | None:
    """Why the Docker engine cannot be asked about the cluster container (within the probe
    bound, adapters/deadlines.py), or None."""
    import docker

    from ..adapters import deadlines

    try:
        client = docker.from_env(timeout=max(1, int(deadlines.probe() if timeout is None else timeout)))
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "could not look"
        text = f"{type(exc).__name__}: {exc}"
        return text if len(text) <= 160 else text[:157] + "..."
    return None


def unchecked(obs: Observation, state_dir: Path, docker_problem: str | None) -> list[str]:
    """What the doctor could not look at; an `ok` verdict needs this to be empty."""
    reasons = []
    if obs.hung:
        from ..adapters import deadlines

        reasons.append(f"{', '.join(f'`{c}`' for c in obs.hung)} did not answer within {deadlines.probe():g} s "
                       "(the OpenShell CLI or its gateway hangs)")
    if not obs.cli_version:
        reasons.append("the installed openshell CLI did not report its version")
    if docker_problem is not None:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        reasons.append(f"the Docker engine at {host} does not answer ({docker_problem}), so the cluster container could not be inspected")
    marker_path = Path(state_dir) / MARKER_NAME
    if obs.marker is None and os.path.lexists(marker_path):
        reasons.append(f"the runtime marker {marker_path} is not a valid marker, so the gateway it names could not be checked")
    if not obs.probes.alive:
        reasons.append("the gateway is not healthy (stopped, or its port does not accept connections), so the version it serves could not be read")
    elif not obs.served_version:
        reasons.append("the version the running gateway serves could not be read")
    if obs.marker is not None and not obs.cluster_active and not accepts_connections(obs.marker.endpoint):
        reasons.append(f"the runtime marker's endpoint {obs.marker.endpoint} does not accept connections")
    return reasons


SERVED_SOURCES = {"grpc": "gRPC Health", "readyz": "/readyz", "status": "`openshell status`"}
"""How each served-version source is named to the user."""


def _rows(obs: Observation, state_dir: Path | None = None, docker_unreachable: bool = False) -> list[tuple[str, str, str, str]]:
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
    corrupt = m is None and state_dir is not None and os.path.lexists(Path(state_dir) / MARKER_NAME)
    rows.append((
        "Runtime marker",
        ("corrupt (not a valid marker)" if corrupt else "absent") if m is None
        else f"pid {m.pid} ({'live gateway' if obs.marker_live else 'not running'}), endpoint {m.endpoint}",
        "-",
        "-",
    ))  # fmt: skip
    served = (
        f"{obs.served_endpoint} ({obs.served_version}, via {SERVED_SOURCES.get(obs.served_source or '', obs.served_source)})"
        if obs.served_version
        else "unknown"
    )
    rows.append(("Served version", served, exp, "DRIFT" if served_version_drift(obs) else _mark(_same(obs.cli_version, obs.served_version))))
    cluster = ("none" if not docker_unreachable else "unknown (Docker engine unreachable)") if c is None else f"{c.image} ({'running' if c.running else 'stopped'}, {'active' if obs.cluster_active else 'inactive'})"
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


@click.group("gateway", help=GROUPS["gateway"].help)
def gateway_group() -> None:
    pass


@gateway_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of a table.")
@click.option("--gateway", "gateway", default=DEFAULT_GATEWAY, show_default=True, help="Gateway name.")
def check(as_json: bool, gateway: str) -> None:
    """Compare the installed OpenShell CLI with the running gateway (read-only)."""
    state_dir = Paths.from_env().gateway_state_dir
    try:
        obs = observe(gateway, state_dir=state_dir)
    except OpenShellNotFound as exc:
        fail(str(exc), 1)
    issue = decide(obs)
    docker_problem = _docker_problem()
    reasons = unchecked(obs, state_dir, docker_problem)
    verdict = issue.kind if issue is not None else (COULD_NOT_CHECK if reasons else "ok")
    interrupted = _interrupted_runs()
    migration = pending_note(Paths.from_env().nemoclaw_dir)  # a migration to OpenShell 0.1 waiting or under way
    if as_json:
        doc = {"verdict": verdict.replace(" ", "_"), "drift": issue is not None, "could_not_check": reasons,
               **observation_doc(obs)}
        doc["diagnosis"] = format_diagnosis(issue, backup_all_wording()) if issue else []
        doc["interrupted_runs"] = [{"run": i.run_id, "workflow": i.replay.workflow, "sandbox": i.sandbox,
                                    "state": i.state} for i in interrupted]
        doc["migration"] = migration.strip() if migration else None
        click.echo(json.dumps(doc, indent=2))
    else:
        rows = _rows(obs, state_dir, docker_unreachable=docker_problem is not None)
        (_print_rich if sys.stdout.isatty() else _print_plain)(rows, verdict)
        for reason in reasons:
            click.echo(f"  Could not check: {reason}.", err=True)
        if issue is not None:
            for line in format_diagnosis(issue):
                click.echo(line, err=True)
        for i in interrupted:
            if i.damaged:
                from ..engine.resume import damaged_line

                click.echo(damaged_line(i), err=True)
            else:
                click.echo(f"  Interrupted run {i.run_id} ({i.describe()}) has not finished: "
                           f"`nemoclaw runs resume {i.run_id}`.", err=True)
        if migration:
            click.echo(migration, err=True)
    sys.exit(0 if verdict == "ok" and not interrupted and not migration else 1)


def pending_note(nemoclaw_dir: Path) -> str | None:
    from ..store.migration_plan import pending_note as note

    return note(nemoclaw_dir)


def _interrupted_runs() -> list:
    """Runs a crash left unfinished (journals under ~/.nemoclaw/runs/); reported, never resumed here."""
    from ..engine.resume import find_interrupted

    return find_interrupted(Paths.from_env())
