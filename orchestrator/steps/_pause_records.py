"""Records of freezes (Docker pause), so a killed run's frozen sandbox is unpaused next time.

A backup pauses a sandbox's container while reading it (unless `--no-freeze`) and unpauses
it on every path of the run (steps/backup.py);
a run killed outright (SIGKILL, power loss) cannot, and a paused sandbox looks "not running"
to OpenShell, so every later run would skip it for ever. So a pause is first recorded under
`rebuild-backups/.paused/` and the record removed after the unpause; the `unpause_leftovers`
step of the next run (before it lists sandboxes) unpauses what a dead run left paused, and
says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..adapters.sandbox_containers import docker_client
from ..kernel import atomic
from ..store import fsops
from ..store.staging import Owner

if TYPE_CHECKING:
    from ..engine.context import RunContext


def paused_dir(ctx: "RunContext") -> Path:
    return ctx.paths.backups_root / ".paused"


def write_intent(d: Path, ctx: "RunContext", name: str, container: Any) -> Path:
    """Write (durably, in `d`) that this run is about to pause `container`, before it does:
    the record lets the next run undo it if this one dies."""
    fsops.makedirs_private(d)
    path = d / f"{container.id}.json"
    doc = {"sandbox": name, "container": container.name, "owner": Owner.current(ctx.run_id).to_json()}
    atomic.write_file_atomic(path, atomic.dump_json(doc))
    return path


def forget_record(record: Path | None) -> None:
    if record is not None:
        try:
            record.unlink()
        except FileNotFoundError:
            pass


def record_pause(ctx: "RunContext", name: str, container: Any) -> Path:
    """Write (durably) that this run is about to pause `container`, before pausing it."""
    return write_intent(paused_dir(ctx), ctx, name, container)


forget_pause = forget_record


def unpause_leftovers_of_dead_runs(ctx: "RunContext") -> None:
    """Unpause containers that a dead run froze for a backup and could not unpause."""
    d = paused_dir(ctx)
    try:
        records = sorted(d.glob("*.json"))
    except OSError:
        return
    for path in records:
        try:
            doc = json.loads(path.read_bytes())
            owner = Owner.from_json(doc["owner"])
            name, cname = str(doc["sandbox"]), str(doc["container"])
        except (OSError, ValueError, KeyError, TypeError):
            forget_pause(path)  # unreadable: nothing we can safely act on
            continue
        if owner.is_alive():  # a resumed run has its dead predecessor's run id: its freeze is a leftover too
            continue
        try:
            container = docker_client().containers.get(path.name[: -len(".json")])
            container.reload()
            if container.status == "paused":
                container.unpause()
                ctx.out.say(f"Unpaused '{name}' (container {cname}): interrupted run {owner.run_id} had paused it.")
                ctx.event("container_unpaused", sandbox=name, container=cname, paused_by=owner.run_id)
        except Exception as exc:  # noqa: BLE001 - gone or not ours to fix: say so, keep going
            if "No such container" not in str(exc) and type(exc).__name__ != "NotFound":
                ctx.out.say(f"Could not unpause '{name}' (container {cname}), paused by interrupted run "
                            f"{owner.run_id}: {exc}. Run: docker unpause {cname}", err=True)
                continue
        forget_pause(path)


def frozen_by_runs(ctx: "RunContext") -> dict[str, tuple[str, bool]]:
    """Sandbox -> (run id, whether that run is alive) for every freeze record still there
    (read-only: for reports, so a frozen sandbox is not called stopped)."""
    found: dict[str, tuple[str, bool]] = {}
    try:
        records = sorted(paused_dir(ctx).glob("*.json"))
    except OSError:
        return found
    for path in records:
        try:
            doc = json.loads(path.read_bytes())
            owner = Owner.from_json(doc["owner"])
            found[str(doc["sandbox"])] = (owner.run_id, owner.is_alive())
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found
