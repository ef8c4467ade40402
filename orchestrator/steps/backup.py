"""`snapshot` and `commit_backups`: the backup half of backup-all (nemoclaw-behaviour §2.2).

snapshot streams each ready sandbox's agent state out of its container into the run's
staging area (several sandboxes at once), hashing every file as it is written and refusing
hostile entries; each staged backup gets its manifest. commit_backups re-verifies every
staged tree against its manifest and renames it into
`~/.nemoclaw/rebuild-backups/<name>/<timestamp>/`: nothing partial is ever visible.

Data: snapshot reads `ctx.data["registry"]` and `ctx.data["sandbox_list"]["ready"]` (or an
explicit `ctx.data["backup_targets"]` list of names, as rebuild-sandbox sets) and leaves
`ctx.data["captures"]` for commit_backups, which leaves `ctx.data["committed"]`
({name: backup dir}) and `ctx.data["summary"]`.

`--consistent` pause records: _pause_records.py. Test kill points: _kill_points.py.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..engine.errors import StepError
from ..engine.steps import step
from ..registry import SandboxEntry
from ..sandbox_containers import agent_at_root, docker_client
from ..store import (
    BackupStore,
    Capture,
    build_manifest,
    capture_sandbox,
    load_agent,
    load_manifest,
    new_timestamp,
    verify,
    write_manifest,
)
from ..store.errors import StoreError

from ._kill_points import Cancelled as _Cancelled
from ._kill_points import pause_point as _pause_point
from ._pause_records import forget_pause as _forget_pause
from ._pause_records import record_pause as _record_pause
from ._openshell_common import listed_container
from ._pause_records import unpause_leftovers_of_dead_runs as _unpause_leftovers

if TYPE_CHECKING:
    from ..engine.context import RunContext
    from ..engine.output import ProgressTask


@attrs.define
class SandboxBackup:
    name: str
    timestamp: str
    staged: Path
    dest: Path
    capture: Capture | None = None
    error: str | None = None
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None and self.capture is not None and self.capture.ok

    def failure(self) -> str:
        if self.error:
            return self.error
        assert self.capture is not None
        return ", ".join([*self.capture.failed_dirs, *self.capture.failed_files]) or "unsafe entries refused"


def _targets(ctx: "RunContext") -> tuple[list[SandboxEntry], list[str]]:
    registry: list[SandboxEntry] = ctx.data.get("registry", [])
    explicit = ctx.data.get("backup_targets")
    if explicit is not None:
        return [e for e in registry if e.name in explicit], []
    ready = set(ctx.data.get("sandbox_list", {}).get("ready", []))
    return [e for e in registry if e.name in ready], [e.name for e in registry if e.name not in ready]


@step("snapshot")
def snapshot(ctx: "RunContext") -> None:
    """Stream each ready sandbox's state into staging, in parallel; refuse hostile entries."""
    out, st = ctx.out, ctx.out.style
    targets, skipped = _targets(ctx)
    registry_order = [e.name for e in ctx.data.get("registry", [])]
    for name in registry_order:
        if name in skipped:
            out.line(f"  {st.D}Skipping '{name}' (not running){st.R}")
    ctx.data["skipped"] = skipped
    timestamp = new_timestamp()
    store = BackupStore(ctx.paths.backups_root)
    jobs = [SandboxBackup(e.name, timestamp, ctx.staging.dir_for(e.name), store.dest_for(e.name, timestamp)) for e in targets]
    ctx.data["captures"] = jobs
    if not jobs:
        return
    docker_client()  # fail once, clearly, if there is no engine
    parallel = max(1, int(ctx.options.get("parallel") or 1))
    consistent = bool(ctx.options.get("consistent"))
    cancel = threading.Event()
    entries = {e.name: e for e in targets}
    with out.progress() as progress:
        tasks = {job.name: progress.task(job.name) for job in jobs}

        def work(job: SandboxBackup) -> None:
            out.line(f"  Backing up '{job.name}'...")
            _capture_one(ctx, job, entries[job.name], tasks[job.name], cancel, consistent)
            tasks[job.name].done()

        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="snapshot") as pool:
            futures = [pool.submit(work, job) for job in jobs]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for f in done:
                    f.result()
            except BaseException:
                cancel.set()  # workers stop at their next chunk and unpause what they paused
                for f in futures:
                    f.cancel()
                raise
    for job in jobs:
        if not job.ok:
            out.error(f"  {st.RD}✗{st.R} {job.name}: backup failed ({job.failure()})")


def _capture_one(
    ctx: "RunContext", job: SandboxBackup, entry: SandboxEntry, task: "ProgressTask", cancel: threading.Event, consistent: bool
) -> None:
    last = {"bytes": 0, "files": 0}

    def on_progress(nbytes: int, files: int) -> None:
        # Called with totals of the current path; a new path starts again from 0.
        if cancel.is_set():
            raise _Cancelled()
        db = nbytes - last["bytes"] if nbytes >= last["bytes"] else nbytes
        df = files - last["files"] if files >= last["files"] else files
        last["bytes"], last["files"] = nbytes, files
        job.bytes += db
        task.advance(db, df)
        if files:
            _pause_point(ctx, "archive", job.name, cancel)

    try:
        agent = load_agent(entry.agent)
        container = listed_container(ctx, job.name)
    except (StepError, StoreError) as exc:
        job.error = str(exc).strip()
        return
    paused = False
    record: Path | None = None
    try:
        if consistent:
            record = _record_pause(ctx, job.name, container)
            container.pause()
            paused = True
        agent = agent_at_root(agent, container)  # the image's WorkingDir may move the data root (0.0.99+)
        job.capture = capture_sandbox(container, agent, job.staged, on_progress=on_progress)
        manifest = build_manifest(
            job.capture,
            agent,
            sandbox=job.name,
            timestamp=job.timestamp,
            backup_path=job.dest,
            agent_version=entry.agent_version,
            policy_presets=list(entry.policies),
        )
        write_manifest(job.staged, manifest)
    except _Cancelled:
        job.error = "interrupted"
    except Exception as exc:  # noqa: BLE001 - one sandbox's failure must not stop the others
        job.error = f"{type(exc).__name__}: {exc}"
    finally:
        if paused:
            try:
                container.unpause()
            except Exception as exc:  # noqa: BLE001
                ctx.out.error(f"  Could not unpause the container of '{job.name}': {exc}. Run: docker unpause {container.name}")
            else:
                _forget_pause(record)
        elif record is not None:
            _forget_pause(record)  # pause() itself failed


@step("unpause_leftovers")
def unpause_leftovers(ctx: "RunContext") -> None:
    """Unpause sandboxes a killed --consistent run left paused (before the list, which would
    otherwise show them as not running and skip them)."""
    _unpause_leftovers(ctx)


@step("commit_backups", outcomes=("next", "partial"), commits=True, params=("quiet_summary",))
def commit_backups(ctx: "RunContext") -> str:
    """Re-verify every staged backup against its manifest, then rename it into place."""
    out, st = ctx.out, ctx.out.style
    jobs: list[SandboxBackup] = ctx.data.get("captures", [])
    skipped: list[str] = ctx.data.get("skipped", [])
    good = [j for j in jobs if j.ok]
    failed = [j for j in jobs if not j.ok]
    if ctx.options.get("strict") and failed:
        ctx.data["summary"] = _summary([], failed, skipped)
        raise StepError(
            f"  --strict: nothing was committed because {len(failed)} of {len(jobs)} sandbox backup(s) failed."
        )
    committed: dict[str, Path] = {}
    for job in good:
        manifest = load_manifest(job.staged)
        mismatch = verify(job.staged, manifest)
        if mismatch is not None:
            job.error = f"staged copy does not match its manifest: {mismatch}"
            failed.append(job)
            out.error(f"  {st.RD}✗{st.R} {job.name}: backup failed ({job.error})")
            continue
        _pause_point(ctx, "before_commit", job.name)
        ctx.staging.commit(job.name, job.dest)
        committed[job.name] = job.dest
        _pause_point(ctx, "after_commit", job.name)
        ctx.event("backup_committed", sandbox=job.name, path=str(job.dest), files=len(manifest.files), bytes=job.bytes)
        out.line(f"  {st.G}✓{st.R} {job.name}: {len(manifest.backed_up_dirs)} dirs, {len(manifest.files)} files → {job.dest}")
    ctx.data["committed"] = committed
    backed = [j for j in good if j.name in committed]
    ctx.data["summary"] = _summary(backed, failed, skipped)
    if ctx.params.get("quiet_summary"):
        return "partial" if failed else "next"
    out.line("")
    out.line(f"  Pre-upgrade backup: {len(backed)} backed up, {len(failed)} failed, {len(skipped)} skipped")
    if backed:
        out.line("  Backups stored in: ~/.nemoclaw/rebuild-backups/")
    return "partial" if failed else "next"


def _summary(backed: list[SandboxBackup], failed: list[SandboxBackup], skipped: list[str]) -> dict[str, Any]:
    return {
        "backed_up": [{"sandbox": j.name, "path": str(j.dest), "timestamp": j.timestamp, "bytes": j.bytes,
                       "files": len(j.capture.archive.files) if j.capture else 0} for j in backed],
        "failed": [{"sandbox": j.name, "reason": j.failure()} for j in failed],
        "skipped": [{"sandbox": n, "reason": "not running"} for n in skipped],
    }
