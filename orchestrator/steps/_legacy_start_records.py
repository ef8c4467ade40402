"""Start records left by older releases of this tool, finished through OpenShell.

Older releases started a stopped sandbox's container (a bare `docker start`) to back it up, and
first wrote `rebuild-backups/.started/<container id>.json` (sandbox, container name, the run's
owner) so that the next run could stop it again if they were killed in between. Today a stopped
sandbox is read from its stopped container and never started (docs/reference/sandbox-lifecycle.md),
so no new record is written; a record that a killed older run left behind is still honoured:
if its run is dead and the container still runs, the sandbox is returned to stopped through
`openshell sandbox stop` (never a bare `docker stop`, which would leave it in phase Error), with
one line saying so; if OpenShell cannot stop it, one line says what to do. Each record is then
removed, so the line appears once. A record of a live run is left alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..adapters.openshell.lifecycle import run_lifecycle
from ..adapters.openshell.rpc_errors import failure_gist
from ..adapters.sandbox_containers import docker_client
from ..kernel.errors import StepError
from ..kernel.owner import Owner

if TYPE_CHECKING:
    from ..engine.context import RunContext

RUNNING_STATES = ("running", "paused", "restarting")


def started_dir(ctx: "RunContext") -> Path:
    return ctx.paths.backups_root / ".started"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_bytes())
        return {"owner": Owner.from_json(doc["owner"]), "sandbox": str(doc["sandbox"]), "container": str(doc["container"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _forget(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _state(container_id: str) -> str | None:
    """The container's Docker state, or None when it is gone."""
    import docker.errors

    try:
        container = docker_client().containers.get(container_id)
    except docker.errors.NotFound:
        return None
    return str(container.status)


def return_legacy_starts(ctx: "RunContext") -> None:
    """Return to stopped, through OpenShell, what a dead run of an older release started."""
    try:
        records = sorted(started_dir(ctx).glob("*.json"))
    except OSError:
        return
    for path in records:
        doc = _read(path)
        if doc is None:
            _forget(path)  # unreadable: nothing we can safely act on
            continue
        owner, name, cname = doc["owner"], doc["sandbox"], doc["container"]
        if owner.is_alive():
            continue
        try:
            state = _state(path.name[: -len(".json")])
        except Exception as exc:  # noqa: BLE001 - no engine: keep the record for the next run
            ctx.out.say(f"Could not check '{name}' (container {cname}), started by interrupted run {owner.run_id}: {exc}", err=True)
            continue
        if state in RUNNING_STATES:
            try:
                result = run_lifecycle("stop", name)
                ok, why = result.status == 0, failure_gist(result.output)
            except StepError as exc:
                ok, why = False, " ".join(str(exc).split())
            if ok:
                ctx.out.say(f"Returned '{name}' to its stopped state through OpenShell (container {cname}): "
                            f"interrupted run {owner.run_id} had started it to back it up.")
                ctx.event("sandbox_stopped", sandbox=name, container=cname, started_by=owner.run_id)
            else:
                ctx.out.say(f"'{name}' (container {cname}) still runs: interrupted run {owner.run_id} had started it "
                            f"to back it up, and `openshell sandbox stop {name}` failed ({why}); stop it through "
                            "OpenShell if it should be stopped.", err=True)
        _forget(path)
