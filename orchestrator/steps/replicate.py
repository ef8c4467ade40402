"""`replicate_backups` and `pull_backup`: the off-host copies as workflow steps
(steps/_replication.py does the work; docs/backups.md, "Off-host copies").

replicate_backups runs after `commit_backups` (backup-all, rebuild-sandbox): with
NEMOCLAW_BACKUP_REPOSITORY set, it pushes every backup this run committed (`committed`), and any
older valid backup of the same sandbox, that the repository lacks (so what a killed or failed
earlier run did not copy is copied by the next); without it, it does nothing and says nothing. A failure leaves the local
backups committed, says why, and takes the `incomplete` outcome (the run ends incomplete, exit
1), unless the run's `replicate` option is `best-effort`: then it warns and goes on. Resumed
(`resume: retry`), it pushes again what the repository still lacks, by manifest digest.

pull_backup (for a user's own workflow): pulls sandbox `with.sandbox` (default the run's `name`
option) at `with.timestamp` (default latest) into the run's staging area, checks it and commits
it into the local store; writes `pulled`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..adapters.agents.definitions import load_agent
from ..adapters.restic import Restic, configured
from ..engine.registry import implements
from ..kernel.errors import StepError, StoreError
from ..store import BackupStore
from ._replication import ReplicationError, pull as _pull, push_backup, remote_backups
from .facts import NotBackedUp
from .replicate_facts import OffHost, ReplicatedCopy, ReplicationReport

if TYPE_CHECKING:
    from ..engine.context import RunContext

BEST_EFFORT = "best-effort"


@implements("replicate_backups")
def replicate_backups(ctx: "RunContext") -> str:
    committed: dict[str, str] = ctx.fact("committed", {})
    repo = configured()
    mode = str(ctx.option("replicate"))
    if repo is None or not committed:
        ctx.put("replication", ReplicationReport(OffHost(repository=repo.shown if repo else None, mode=mode)))
        return "next"
    out = ctx.out
    restic = Restic(repo)
    store = BackupStore(ctx.paths.backups_root, load_agent)
    copies: list[ReplicatedCopy] = []
    failed: list[NotBackedUp] = []
    out.say(f"Copying {len(committed)} backup(s) off-host to {repo.shown}...")
    try:
        held = remote_backups(restic)
    except StepError as exc:
        failed = [NotBackedUp(name, str(exc).strip()) for name in committed]
        out.fail(f"No backup was copied off-host: {str(exc).strip()}")
    else:
        for name, path in committed.items():
            try:
                backups = _to_push(store, name, Path(path))
            except (StepError, StoreError) as exc:
                failed.append(NotBackedUp(name, str(exc).strip()))
                out.fail(f"{name}: not copied off-host: {str(exc).strip()}", sandbox=name)
                continue
            for backup in backups:
                try:
                    with out.progress() as progress:
                        row = progress.task(f"Copying '{name}' {backup.timestamp} off-host")
                        res = push_backup(restic, backup, held=held,
                                          on_status=lambda s: row.update(s.bytes_done, s.files_done))
                        row.done()
                except (StepError, StoreError) as exc:
                    failed.append(NotBackedUp(name, str(exc).strip()))
                    out.fail(f"{name} {backup.timestamp}: not copied off-host: {str(exc).strip()}", sandbox=name)
                    break
                copies.append(ReplicatedCopy(name, backup.timestamp, res.snapshot_id, res.bytes, res.data_added))
                ctx.event("backup_replicated", sandbox=name, timestamp=backup.timestamp, snapshot=res.snapshot_id)
                if not res.skipped:
                    out.ok(f"{name} {backup.timestamp}: copied off-host as snapshot {res.snapshot_id}", sandbox=name)
    ctx.put("replication", ReplicationReport(OffHost(repository=repo.shown, mode=mode, copies=copies, failed=failed)))
    if not failed:
        return "next"
    if mode == BEST_EFFORT:
        out.warn(f"{len(failed)} backup(s) are committed locally only (--replicate best-effort); "
                 "copy them later with: nemoclaw backups push")
        return "next"
    out.say(f"{len(failed)} backup(s) are committed locally but not off-host; when the repository is reachable, "
            "run: nemoclaw backups push", err=True)
    return "incomplete"


def _to_push(store: BackupStore, sandbox: str, committed: Path) -> list:
    """The backup this run committed of `sandbox`, after its older valid backups (oldest first):
    those an interrupted or failed earlier run did not copy are copied now (each is skipped when
    the repository holds it already)."""
    backups = list(reversed(store.list(sandbox)))
    if not any(b.path == committed for b in backups):
        raise ReplicationError(f"the committed backup {committed} is no longer a valid backup")
    return backups


@implements("pull_backup")
def pull_backup(ctx: "RunContext") -> None:
    repo = configured()
    if repo is None:
        raise StepError("NEMOCLAW_BACKUP_REPOSITORY is not set: pull_backup needs a restic repository to pull from.")
    sandbox = ctx.fill(str(ctx.params.get("sandbox") or "{name}"))
    timestamp = ctx.fill(str(ctx.params.get("timestamp") or "latest"))
    host = ctx.params.get("host")
    restic = Restic(repo)
    store = BackupStore(ctx.paths.backups_root, load_agent)
    remote, dest = _pull(restic, store, ctx.staging, sandbox, timestamp, ctx.fill(host) if host else None)
    where = dest or store.dest_for(remote.sandbox, remote.timestamp)
    ctx.put("pulled", {sandbox: str(where)})
    if dest is None:
        ctx.out.say(f"'{sandbox}' {remote.timestamp} is already in the local store.")
    else:
        ctx.event("backup_pulled", sandbox=sandbox, timestamp=remote.timestamp, path=str(dest))
        ctx.out.ok(f"Pulled '{sandbox}' {remote.timestamp}; its files match "
                   f"its manifest → {dest}")
