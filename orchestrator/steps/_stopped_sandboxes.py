"""Stopped Docker sandboxes are started for their backup and returned to stopped afterwards.

NemoClaw #6500 (docs/reference/stopped-sandboxes.md): a strict pre-upgrade backup failed
because one registered sandbox was stopped. Upstream now starts such a sandbox for the backup
when it has exactly one container labelled `openshell.ai/managed-by=openshell` and
`openshell.ai/sandbox-name=<name>` in state `exited` or `created`, and stops it again.

"Stopped again" must hold on every path. A failure or Ctrl-C is handled by the caller's
`finally`; a run killed outright cannot, so the start is first recorded (durably) under
`rebuild-backups/.started/<container id>.json` and the record removed after the stop. The
`unpause_leftovers` step of the next run stops what a dead run started (`stop_leftovers`),
and a resumed run that finds its own dead predecessor's record adopts it (`adopt`), so the
container it backs up is stopped afterwards too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..adapters.sandbox_containers import SANDBOX_ID_LABEL, SANDBOX_LABEL, docker_client
from ..kernel.errors import StepError
from ..kernel.owner import Owner
from ._pause_records import forget_record, write_intent

if TYPE_CHECKING:
    from ..engine.context import RunContext

MANAGED_BY_LABEL = "openshell.ai/managed-by"
STOPPED_STATES = ("exited", "created")
START_TIMEOUT = 60.0


def skip_line(name: str) -> str:
    """Upstream's line for a registered sandbox that cannot be backed up (no usable container)."""
    return (f"  Skipping '{name}' (not running; start the sandbox/container and rerun 'nemoclaw backup-all' "
            "so NemoClaw can capture a fresh snapshot)")


def stopped_container(name: str, sandbox_id: str | None) -> Any | None:
    """The sandbox's single managed container if it is stopped (`exited`/`created`), else None.

    Containers are matched by the managed-by and sandbox-name labels (and the sandbox id the
    gateway listed, when it gave one, since names are unique only per gateway)."""
    labels = [f"{MANAGED_BY_LABEL}=openshell", f"{SANDBOX_LABEL}={name}"]
    if sandbox_id:
        labels.append(f"{SANDBOX_ID_LABEL}={sandbox_id}")
    found = docker_client().containers.list(all=True, filters={"label": labels})
    found = [c for c in found if c.labels.get(SANDBOX_LABEL) == name and c.labels.get(MANAGED_BY_LABEL) == "openshell"
             and (not sandbox_id or c.labels.get(SANDBOX_ID_LABEL) == sandbox_id)]
    if len(found) != 1 or found[0].status not in STOPPED_STATES:
        return None
    return found[0]


def started_dir(ctx: "RunContext") -> Path:
    return ctx.paths.backups_root / ".started"


def record_start(ctx: "RunContext", name: str, container: Any) -> Path:
    """Write (durably) that this run is about to start `container`, before starting it."""
    return write_intent(started_dir(ctx), ctx, name, container)


forget_start = forget_record


def start(container: Any, name: str) -> None:
    """`docker start` and wait until the container runs (a StepError naming it otherwise)."""
    container.start()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        container.reload()
        if container.status == "running":
            return
        if container.status in ("exited", "dead") or time.monotonic() > deadline:
            raise StepError(f"the stopped container {container.name} of '{name}' did not start (state {container.status})")
        time.sleep(0.1)


def stop(container: Any) -> None:
    container.stop(timeout=10)
    container.reload()


def _records(ctx: "RunContext") -> list[tuple[Path, dict[str, Any] | None]]:
    try:
        paths = sorted(started_dir(ctx).glob("*.json"))
    except OSError:
        return []
    out: list[tuple[Path, dict[str, Any] | None]] = []
    for path in paths:
        try:
            doc = json.loads(path.read_bytes())
            doc["owner"] = Owner.from_json(doc["owner"])
            doc["sandbox"], doc["container"] = str(doc["sandbox"]), str(doc["container"])
            out.append((path, doc))
        except (OSError, ValueError, KeyError, TypeError):
            out.append((path, None))
    return out


def adopt(ctx: "RunContext", container: Any) -> Path | None:
    """A dead run's record of having started `container` (this run now stops it), or None."""
    for path, doc in _records(ctx):
        if path.name == f"{container.id}.json" and doc is not None and not doc["owner"].is_alive():
            return path
    return None


def stop_leftovers(ctx: "RunContext") -> None:
    """Stop containers that a dead run started for a backup and could not stop again."""
    for path, doc in _records(ctx):
        if doc is None:
            forget_start(path)  # unreadable: nothing we can safely act on
            continue
        owner, name, cname = doc["owner"], doc["sandbox"], doc["container"]
        if owner.is_alive():
            continue
        try:
            container = docker_client().containers.get(path.name[: -len(".json")])
            container.reload()
            if container.status in ("running", "paused", "restarting"):
                if container.status == "paused":
                    container.unpause()
                stop(container)
                ctx.out.line(f"  Returned '{name}' to its stopped state (container {cname}): interrupted run "
                             f"{owner.run_id} had started it to back it up.")
                ctx.event("container_stopped", sandbox=name, container=cname, started_by=owner.run_id)
        except Exception as exc:  # noqa: BLE001 - gone or not ours to fix: say so, keep going
            if "No such container" not in str(exc) and type(exc).__name__ != "NotFound":
                ctx.out.error(f"  Could not stop '{name}' (container {cname}), started by interrupted run "
                              f"{owner.run_id}: {exc}. Run: docker stop {cname}")
                continue
        forget_start(path)
