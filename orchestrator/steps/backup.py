"""`snapshot` and `commit_backups`: the backup half of backup-all (docs/reference/nemoclaw-commands.md).

snapshot streams each ready sandbox's agent state out of its container into the run's
staging area (several sandboxes at once), hashing every file as it is written and refusing
hostile entries; each staged backup gets its manifest. commit_backups re-verifies every
staged tree against its manifest and renames it into
`~/.nemoclaw/rebuild-backups/<name>/<timestamp>/`: nothing partial is ever visible.

Facts (steps/facts.py): snapshot reads `registry` and `sandbox_list` (or the `backup_targets`
a rebuild names) and writes `snapshot`; commit_backups reads it and writes `committed`
(sandbox -> backup dir) and `backup_report`.

Resuming: a crash loses the staging area (the next start sweeps it), so an interrupted
snapshot is run again and an interrupted commit goes back to the snapshot (`resume:` in the
workflow files); what a killed commit had already renamed into place is a complete backup.

Each running sandbox is frozen (Docker pause) while its state is read unless `--no-freeze`; pause
records: _pause_records.py. A sandbox in phase Stopped or Error is read from its stopped
container, which is never started, stopped or frozen (docs/reference/sandbox-lifecycle.md);
what an older run left started: _legacy_start_records.py. Test kill points: _kill_points.py.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..kernel.errors import StepError
from ..engine.registry import implements
from ..adapters.nemoclaw_registry import SandboxEntry, duplicate_names, recorded_row
from ..adapters.openshell.lifecycle import NOT_RUNNING_PHASES
from ..adapters.sandbox_containers import agent_at_root, docker_client, has_container, stopped_workload
from ..adapters.agents.definitions import load_agent
from ..store import (
    BackupStore,
    Capture,
    build_manifest,
    capture_sandbox,
    check_staged,
    new_timestamp,
    stage_manifest,
    staged_manifest_of,
    verify,
)
from ..store.errors import StoreError
from ..store.deep_paths import fail_missing as fail_missing_deep
from ..store.deep_paths import fail_unwalked
from ..store.deep_paths import probe as probe_deep
from ..store.home_scope import build_home_manifest, capture_home
from ..store.parallelism import default_parallel

from ._kill_points import Cancelled as _Cancelled
from ._kill_points import pause_point as _pause_point
from ._pause_records import forget_pause as _forget_pause
from ._pause_records import record_pause as _record_pause
from . import _freeze_limit
from ._legacy_start_records import return_legacy_starts
from ._openshell_common import listed_container
from .facts import BackedUp, BackupReport, NotBackedUp, Snapshot, StagedBackup
from ._pause_records import unpause_leftovers_of_dead_runs as _unpause_leftovers

if TYPE_CHECKING:
    from ..engine.context import RunContext
    from ..engine.output import ProgressTask

STRICT_ENV = "NEMOCLAW_REQUIRE_ALL_SANDBOX_BACKUPS"
MISSING = "missing"
"""The skip reason of a registered sandbox that is not there: the gateway does not list it, or
lists it but its container is gone (deleted). Never "not running"; it makes the run incomplete."""


@attrs.define
class SandboxBackup:
    name: str
    timestamp: str
    staged: Path | None  # None when the name cannot be a directory (then `error` says why)
    dest: Path | None
    capture: Capture | None = None
    error: str | None = None
    bytes: int = 0
    # The phase (Stopped or Error) of a sandbox read from its stopped container; None: running.
    phase: str | None = None
    frozen_seconds: float | None = None
    scope: str = "agent"
    point_in_time: bool = True  # False once the freeze limit made it read again live

    @property
    def ok(self) -> bool:
        return self.error is None and self.capture is not None and self.capture.ok

    def failure(self) -> str:
        if self.error:
            return self.error
        assert self.capture is not None
        return ", ".join(self.capture.failures()) or "unsafe entries refused"


def skip_line(name: str) -> str:
    """Upstream's line for a registered sandbox that cannot be backed up (no usable container)."""
    return (f"Skipping '{name}' (not running; start the sandbox/container and rerun 'nemoclaw backup-all' "
            "so NemoClaw can capture a fresh snapshot)")


def _not_running(ctx: "RunContext", name: str) -> Any | None:
    """The stopped workload container of a sandbox OpenShell lists as Stopped or Error, else None."""
    listing = ctx.fact("sandbox_list")
    if name in listing.ready or name not in listing.live or listing.phases.get(name) not in NOT_RUNNING_PHASES:
        return None
    return stopped_workload(name, listing.ids.get(name), listing.workspaces.get(name))


def _targets(ctx: "RunContext") -> tuple[list[SandboxEntry], list[str], dict[str, str]]:
    """(entries to back up, names skipped, phase of each one read from its stopped container)."""
    registry: list[SandboxEntry] = ctx.fact("registry")
    listing = ctx.fact("sandbox_list")
    ready = set(listing.ready)
    explicit = ctx.fact("backup_targets", None)
    wanted = [e for e in registry if explicit is None or e.name in explicit]
    stopped = {e.name: listing.phases[e.name] for e in wanted if _not_running(ctx, e.name) is not None}
    if explicit is not None:
        return wanted, [], stopped
    targets = [e for e in wanted if e.problem or e.name in ready or e.name in stopped]  # a bad row fails, never skips
    return targets, [e.name for e in wanted if e not in targets], stopped


def _missing(ctx: "RunContext", skipped: list[str]) -> dict[str, str]:
    """Of the skipped sandboxes, those that are not there (name -> why): not listed by the
    gateway, or listed with no container at all (a sandbox deleted behind the gateway's back is
    listed in phase Error: docs/reference/stopped-sandboxes.md)."""
    listing = ctx.fact("sandbox_list")
    found: dict[str, str] = {}
    for name in skipped:
        if name not in listing.live:
            found[name] = "the gateway does not list it"
        elif not has_container(name, listing.ids.get(name)):
            phase = listing.phases.get(name) or "unknown"
            found[name] = f"the gateway lists it (phase {phase}) but its container is gone"
    return found


def _report_missing(ctx: "RunContext", missing: dict[str, str]) -> None:
    """Upstream's line for registered sandboxes that are not there, then each one's reason and
    what recreates it (stderr: the run ends incomplete)."""
    from .rebuild import latest_verified_backup

    out = ctx.out
    out.say(f"{len(missing)} recorded sandbox(es) were not found on their recorded gateway: {', '.join(missing)}.", err=True)
    for name, why in missing.items():
        backup = latest_verified_backup(ctx.paths.backups_root, name)
        todo = (f"latest verified backup {backup}; recreate it with `nemoclaw rebuild-sandbox {name} --from-backup latest`"
                if backup is not None else f"no verified backup was found in {ctx.paths.backups_root / name}")
        out.fail(f"{name}: missing ({why}); {todo}.", sandbox=name)
        ctx.event("sandbox_missing", sandbox=name, reason=why)


# What each staged backup's capture recorded as it wrote (file identities), for the commit in
# this same process: process-local by nature (a file identity means nothing to another process),
# so it is not a fact and never journaled. Keyed by the staged directory.
_CAPTURES: dict[str, Capture] = {}


def _staged(jobs: list[SandboxBackup], skipped: list[str], missing: dict[str, str]) -> Snapshot:
    for j in jobs:
        if j.ok and j.capture is not None and j.staged is not None:
            _CAPTURES[str(j.staged)] = j.capture
    return Snapshot(
        backups=[StagedBackup(j.name, j.timestamp, str(j.staged) if j.staged else None, str(j.dest) if j.dest else None,
                              None if j.ok else j.failure(), j.bytes,
                              len(j.capture.archive.files) if j.capture else 0,
                              len(j.capture.backed_up_dirs) if j.capture else 0,
                              bool(j.capture and j.capture.empty), phase=j.phase,
                              frozen_seconds=j.frozen_seconds, scope=j.scope) for j in jobs],
        skipped=[NotBackedUp(n, MISSING if n in missing else "not running") for n in skipped],
    )


def _scope(ctx: "RunContext") -> str:
    """`home` (the whole sandbox home, the default) or `agent` (the agent's declared state):
    store/home_scope.py."""
    return str(ctx.option("scope"))


def _freeze(ctx: "RunContext") -> bool:
    """Point-in-time capture is the default; `--no-freeze` opts out (docs/reference/point-in-time.md)."""
    return not ctx.option("no_freeze")


@implements("snapshot")
def snapshot(ctx: "RunContext") -> None:
    """Stream each ready sandbox's state into staging, in parallel; refuse hostile entries."""
    out = ctx.out
    targets, skipped, stopped = _targets(ctx)
    missing = _missing(ctx, skipped) if skipped else {}
    for entry in ctx.fact("registry"):
        if entry.name in skipped and entry.name not in missing:
            out.say(skip_line(entry.name), tone="dim", sandbox=entry.name)
    if missing:
        _report_missing(ctx, missing)
    timestamp = new_timestamp()
    store = BackupStore(ctx.paths.backups_root, load_agent)
    if targets:
        try:
            ctx.staging  # a symlinked backups folder is the user's to fix: one plain sentence
        except StoreError as exc:
            raise StepError(str(exc), kind="store") from None
    jobs, targets = _jobs(ctx, store, targets, timestamp, stopped, _scope(ctx))
    if not jobs:
        ctx.put("snapshot", _staged(jobs, skipped, missing))
        return
    docker_client()  # fail once, clearly, if there is no engine
    _unpause_leftovers(ctx)  # a resumed run starts here, not in `unpause`: a dead run's freeze must go first
    parallel = max(1, int(ctx.option("parallel") or default_parallel(ctx.paths.backups_root)))
    consistent = _freeze(ctx)
    cancel = threading.Event()
    entries = {e.name: e for e in targets}
    with out.progress() as progress:
        tasks = {job.name: progress.task(job.name) for job in jobs if job.error is None}

        def work(job: SandboxBackup) -> None:
            _capture_one(ctx, job, entries[job.name], tasks[job.name], cancel, consistent)
            tasks[job.name].done()

        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="snapshot") as pool:
            futures = [pool.submit(work, job) for job in jobs if job.error is None]
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
            out.fail(f"{job.name}: backup failed ({job.failure()})", sandbox=job.name)
        elif job.capture is not None and job.capture.skipped_line():
            # FIFOs, sockets, device nodes: nothing a restore could give back; named, not fatal.
            out.warn(f"{job.name}: {job.capture.skipped_line()}", sandbox=job.name)
    ctx.put("snapshot", _staged(jobs, skipped, missing))


def _jobs(
    ctx: "RunContext", store: BackupStore, targets: list[SandboxEntry], timestamp: str, stopped: dict[str, str], scope: str
) -> tuple[list[SandboxBackup], list[SandboxEntry]]:
    """One job per sandbox name. A name the store refuses, or one registered twice, fails
    that sandbox alone (with the reason); the others are backed up."""
    jobs: list[SandboxBackup] = []
    runnable: list[SandboxEntry] = []
    twice = duplicate_names(ctx.fact("registry"))
    for e in targets:
        if any(j.name == e.name for j in jobs):
            continue
        if e.name in twice:
            keys = ", ".join(twice[e.name])
            jobs.append(SandboxBackup(e.name, timestamp, None, None, error=(
                f"registered more than once (entries {keys}); remove all but one and rerun")))
            continue
        if e.problem:
            jobs.append(SandboxBackup(e.name, timestamp, None, None, error=e.problem))
            continue
        try:
            dest = store.dest_for(e.name, timestamp)  # first: its refusal names the sandbox
            jobs.append(SandboxBackup(e.name, timestamp, ctx.staging.dir_for(e.name), dest,
                                      phase=stopped.get(e.name), scope=scope))
            runnable.append(e)
        except StoreError as exc:
            jobs.append(SandboxBackup(e.name, timestamp, None, None, error=str(exc)))
    return jobs, runnable


def _capture_one(
    ctx: "RunContext", job: SandboxBackup, entry: SandboxEntry, task: "ProgressTask", cancel: threading.Event, consistent: bool
) -> None:
    assert job.staged is not None and job.dest is not None  # every runnable job has both (_jobs)
    last = {"bytes": 0, "files": 0}
    deadline = _freeze_limit.Deadline(_freeze_limit.limit_seconds(), cancel)

    def on_progress(nbytes: int, files: int) -> None:
        # Called with totals of the current path; a new path starts again from 0.
        if cancel.is_set():
            raise _Cancelled()
        deadline.check()
        db = nbytes - last["bytes"] if nbytes >= last["bytes"] else nbytes
        df = files - last["files"] if files >= last["files"] else files
        last["bytes"], last["files"] = nbytes, files
        job.bytes += db
        task.advance(db, df)
        if files:
            _pause_point(ctx, "archive", job.name, deadline)  # type: ignore[arg-type]  # it stops waiting at the limit too

    try:
        agent = load_agent(entry.agent)
        if job.phase:
            container = _not_running(ctx, job.name)
            if container is None:
                raise StepError(f"the stopped container of '{job.name}' is gone or was started")
        else:
            container = listed_container(ctx, job.name)
    except (StepError, StoreError) as exc:
        job.error = str(exc).strip()
        ctx.out.say(f"Backing up '{job.name}'...")
        return
    with contextlib.ExitStack() as hold:
        try:
            if job.phase:  # read from the stopped container: not started, not frozen (nothing runs)
                ctx.out.say(f"Backing up '{job.name}' from its stopped container (phase {job.phase})...")
            else:
                ctx.out.say(f"Backing up '{job.name}'...")
            home = job.scope == "home"
            # The image's WorkingDir may move the data root (0.0.99+); the manifest keeps the agent's
            # canonical directories, which restores move under the target container's own root.
            at_root = agent_at_root(agent, container)
            # exec runs neither in a paused container nor in a stopped one, which nothing can change meanwhile
            deep = None if job.phase else probe_deep(container, at_root.home_dir if home else at_root.dir)
            unfreeze = _hold_frozen(ctx, job, container, hold) if consistent and not job.phase else None
            if unfreeze is not None:
                deadline.start()  # a live read (--no-freeze) has no freeze to bound
            read = capture_home if home else capture_sandbox
            try:
                job.capture = read(container, at_root, job.staged, on_progress=on_progress, store_at=job.dest)
            except (_freeze_limit.FreezeLimit, _Cancelled):
                if cancel.is_set() or not deadline.due() or unfreeze is None:
                    raise
                deadline.stop()
                unfreeze()  # the frozen read's stream is closed: the engine lets the unpause through
                if _strict(ctx):
                    job.error = _freeze_limit.strict_message(deadline.seconds)
                    return
                ctx.out.warn(f"{job.name}: {_freeze_limit.warning(deadline.seconds)}", sandbox=job.name)
                job.point_in_time, job.bytes, last["bytes"], last["files"] = False, 0, 0, 0
                job.staged = ctx.staging.fresh_dir(job.name)
                job.capture = read(container, at_root, job.staged, on_progress=on_progress, store_at=job.dest)
            deadline.stop()
            hold.close()  # unfreeze as soon as the state is read
            if deep is not None:
                fail_missing_deep(job.capture, deep, wanted=_wanted(job.capture, agent, home))
            else:
                fail_unwalked(job.capture, at_root.home_dir if home else at_root.dir, sandbox=job.name)
            manifest = (build_home_manifest if home else build_manifest)(
                job.capture,
                agent,
                sandbox=job.name,
                timestamp=job.timestamp,
                backup_path=job.dest,
                agent_version=entry.agent_version,
                policy_presets=list(entry.policies),
                image=container.attrs.get("Config", {}).get("Image") or None,
            )
            if not (consistent and job.point_in_time):
                manifest = attrs.evolve(manifest, point_in_time=False)
            recorded = recorded_row(entry, ctx.paths.nemoclaw_dir)  # a dead host registers it again from this
            if recorded is not None:
                manifest = attrs.evolve(manifest, registry_file=recorded[0], registry_row=recorded[1])
            stage_manifest(job.staged, job.capture, manifest)
        except _Cancelled:
            job.error = "interrupted"
        except StepError as exc:
            job.error = str(exc).strip()
        except StoreError as exc:  # a sentence already: the container is gone, the disk would be full
            job.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one sandbox's failure must not stop the others
            job.error = f"{type(exc).__name__}: {exc}"


def _wanted(capture: Capture, agent: Any, home: bool) -> Any:
    """Which walked paths a capture reads: the home minus its excludes, or the backed-up dirs and files."""
    if home:
        return lambda rel: not any(rel == e or rel.startswith(e + "/") for e in agent.home_excludes)
    dirs = set(capture.backed_up_dirs)
    files = {f.path for f in capture.backed_up_files}
    return lambda rel: rel.split("/", 1)[0] in dirs or rel in files


def _hold_frozen(ctx: "RunContext", job: SandboxBackup, container: Any, hold: contextlib.ExitStack) -> Any:
    """Freeze (Docker pause) the sandbox while its state is read; `hold` unfreezes it on every
    path (a kill is covered by the pause record, written before the pause: _pause_records.py).
    Returns the unfreeze, to call earlier (at the freeze limit: _freeze_limit.py); it runs once."""
    record = _record_pause(ctx, job.name, container)
    try:
        container.pause()
    except BaseException:
        _forget_pause(record)
        raise
    began = time.monotonic()
    done: list[bool] = []

    def unfreeze() -> None:
        import docker.errors

        if done:
            return
        done.append(True)
        try:
            container.unpause()
        except docker.errors.NotFound:  # the container is gone (its backup fails): nothing to unfreeze
            _forget_pause(record)
        except Exception as exc:  # noqa: BLE001
            ctx.out.say(f"Could not unpause the container of '{job.name}': {exc}. Run: docker unpause {container.name}", err=True)
        else:
            _forget_pause(record)
        job.frozen_seconds = round(time.monotonic() - began, 3)

    hold.callback(unfreeze)
    return unfreeze


@implements("unpause_leftovers")
def unpause_leftovers(ctx: "RunContext") -> None:
    """Unpause sandboxes a killed run left frozen (before the list, which would otherwise show
    them as not running and skip them), then return to stopped, through OpenShell, what a run
    of an older release had started for its backup (_legacy_start_records.py)."""
    _unpause_leftovers(ctx)
    return_legacy_starts(ctx)


@implements("commit_backups")
def commit_backups(ctx: "RunContext") -> str:
    """Re-verify every staged backup against its manifest, then rename it into place."""
    out = ctx.out
    snap: Snapshot = ctx.fact("snapshot")
    jobs = snap.backups
    good = [j for j in jobs if j.ok]
    failed = [j for j in jobs if not j.ok]
    if _strict(ctx) and (failed or snap.skipped):
        ctx.put("committed", {})
        ctx.put("backup_report", _summary([], failed, snap))
        lines = []
        if snap.skipped:
            lines.append(f"Strict pre-upgrade backup requires every registered sandbox to be backed up; "
                         f"{len(snap.skipped)} sandbox(es) were skipped.")
        if failed:
            lines.append(f"--strict: nothing was committed because {len(failed)} of {len(jobs)} sandbox backup(s) failed.")
        else:
            lines.append("--strict: nothing was committed.")
        raise StepError("\n".join(lines))
    committed: dict[str, str] = {}
    backed: list[StagedBackup] = []
    if good:
        ctx.staging.sync()  # every staged byte on disk before the first rename: one syncfs, not one per sandbox
    for job in good:
        assert job.staged is not None and job.dest is not None  # a backup without them failed (_staged)
        staged, dest = Path(job.staged), Path(job.dest)
        capture = _CAPTURES.pop(str(staged), None)
        manifest = staged_manifest_of(staged, capture)  # kept in memory when this process wrote it
        # No re-hash of what was hashed as it was written (store/capture.py says why); the full
        # re-hash only if this process did not write it (it always does: a resumed commit goes
        # back to the snapshot, whose staging did not survive the crash).
        mismatch = check_staged(staged, capture) if capture is not None else verify(staged, manifest)
        if mismatch is not None:
            job = attrs.evolve(job, error=f"staged copy does not match its manifest: {mismatch}")
            failed.append(job)
            out.fail(f"{job.name}: backup failed ({job.error})", sandbox=job.name)
            continue
        _pause_point(ctx, "before_commit", job.name)
        try:
            ctx.staging.commit(job.name, dest, synced=True)
        except StoreError as exc:  # e.g. a symlinked rebuild-backups/<name>: this sandbox only
            job = attrs.evolve(job, error=str(exc))
            failed.append(job)
            out.fail(f"{job.name}: backup failed ({job.error})", sandbox=job.name)
            continue
        committed[job.name] = str(dest)
        backed.append(job)
        _pause_point(ctx, "after_commit", job.name)
        ctx.event("backup_committed", sandbox=job.name, path=str(dest), files=len(manifest.files), bytes=job.bytes)
        if job.empty:
            what = (f"the sandbox home {manifest.dir} holds nothing" if manifest.scope == "home"
                    else f"none of the agent's state dirs or files exist under {manifest.dir} in the sandbox")
            out.warn(f"{job.name}: empty backup: {what} → {dest}", sandbox=job.name)
            ctx.event("backup_empty", sandbox=job.name, path=str(dest))
            continue
        ndirs = len(manifest.dirs) if manifest.scope == "home" else len(manifest.backed_up_dirs)
        out.ok(f"{job.name}: {ndirs} dirs, {len(manifest.files)} files → {dest}", sandbox=job.name)
        if job.frozen_seconds is not None:
            out.say(f"Frozen for {job.frozen_seconds:.3f} s while its state was read.", tone="dim", indent=4, sandbox=job.name)
        if job.phase:
            out.say(f"Read from its stopped container (phase {job.phase}); it was not started.", tone="dim", indent=4, sandbox=job.name)
    ctx.put("committed", committed)
    ctx.put("backup_report", _summary(backed, failed, snap))
    skipped = snap.skipped
    incomplete = bool(failed) or any(s.reason == MISSING for s in skipped)  # a missing sandbox is not backed up
    if ctx.params.get("quiet_summary"):
        return "partial" if incomplete else "next"
    out.line("")
    out.say(f"Pre-upgrade backup: {len(backed)} backed up, {len(failed)} failed, {len(skipped)} skipped")
    if backed:
        out.say(f"Backups stored in: {ctx.paths.backups_root.absolute()}")
    return "partial" if incomplete else "next"


def _strict(ctx: "RunContext") -> bool:
    """`--strict`, or upstream's installer switch NEMOCLAW_REQUIRE_ALL_SANDBOX_BACKUPS=1."""
    return bool(ctx.option("strict")) or os.environ.get(STRICT_ENV, "").strip() == "1"


def _summary(backed: list[StagedBackup], failed: list[StagedBackup], snap: Snapshot) -> BackupReport:
    return BackupReport(
        backed_up=[BackedUp(j.name, j.dest or "", j.timestamp, j.bytes, j.files, j.empty, scope=j.scope,
                            frozen_seconds=j.frozen_seconds, phase=j.phase) for j in backed],
        failed=[NotBackedUp(j.name, j.error or "failed") for j in failed],
        skipped=list(snap.skipped),
    )
