"""Off-host copies of committed backups in a restic repository: push one, find them, pull one
(docs/backups.md, "Off-host copies"). Used by the `replicate_backups` and `pull_backup` steps
(steps/replicate.py) and by `nemoclaw backups push|pull|list --remote` (cli/backups_remote.py).

One restic snapshot per backup, taken file by file from the committed directory (so restic
deduplicates each file's chunks against everything already in the repository, and the
snapshot's files are the manifest's files), tagged:

    nemoclaw  sandbox=<name>  timestamp=<backup timestamp>  manifest=<sha256 of rebuild-manifest.json>
    host=<this host>  bytes=<the files' total size>

A push is idempotent by manifest digest: a backup whose digest the repository holds is skipped.
A pull restores a snapshot into the run's staging area, checks the manifest's digest against the
tag, the manifest against its agent and every file against the manifest (size and SHA-256), and
only then commits it with the store's own atomic rename under its original timestamp: a damaged
pack, a kill or a wrong file leaves the store as it was (the staging area is discarded, or swept
by the next run).

Test kill points (like steps/_kill_points.py, same variables): `push:<sandbox>` stops restic
(SIGSTOP) mid-upload, at its first status line with bytes done, and waits; `pull:<sandbox>`
waits after restic has restored into staging, before the check and the commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import attrs

from ..adapters.agents.definitions import load_agent
from ..adapters.restic import BackupStatus, Restic, ResticError, Snapshot
from ..adapters.restic.messages import TAG_PREFIX
from ..kernel.atomic import dump_json, write_file_atomic
from ..kernel.errors import ManifestError, StepError, StoreError
from ..store import MANIFEST_NAME, Backup, BackupStore, check_against_agent, load_manifest, parse_timestamp, verify
from ..store.staging import Staging
from ._kill_points import PAUSE_ENV, PAUSE_MARKER_ENV
from ._writeback import EarlyWriteback

_PAUSE_MAX_SECONDS = 600.0


class ReplicationError(StepError):
    """A push or pull of one backup failed; the local store is as it was."""


@attrs.frozen
class RemoteBackup:
    """One of our snapshots in the repository."""

    sandbox: str
    timestamp: str
    digest: str
    host: str
    bytes: int
    snapshot_id: str
    short_id: str


@attrs.frozen
class Pushed:
    sandbox: str
    timestamp: str
    snapshot_id: str | None  # None: skipped, the repository already held it
    bytes: int
    data_added: int = 0

    @property
    def skipped(self) -> bool:
        return self.snapshot_id is None


def manifest_digest(backup_dir: Path) -> str:
    """SHA-256 of the backup's manifest file as stored (never through a symlink)."""
    fd = os.open(Path(backup_dir) / MANIFEST_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def tags_for(backup: Backup, digest: str, host: str) -> list[str]:
    size = sum(f.size for f in backup.manifest.files)
    return [TAG_PREFIX, f"sandbox={backup.sandbox}", f"timestamp={backup.timestamp}", f"manifest={digest}",
            f"host={host}", f"bytes={size}"]


def restic_time(timestamp: str) -> str:
    when = parse_timestamp(timestamp)
    if when is None:
        raise ReplicationError(f"  invalid backup timestamp {timestamp!r}")
    return when.strftime("%Y-%m-%d %H:%M:%S")


def from_snapshot(s: Snapshot) -> RemoteBackup | None:
    """Ours (all our tags, well formed) or None (another tool's snapshot, or one edited by hand)."""
    if TAG_PREFIX not in s.tags:
        return None
    sandbox, ts, digest, host, size = (s.tag(k) for k in ("sandbox", "timestamp", "manifest", "host", "bytes"))
    if not sandbox or not ts or parse_timestamp(ts) is None or not digest or len(digest) != 64:
        return None
    try:
        nbytes = int(size or 0)
    except ValueError:
        nbytes = 0
    return RemoteBackup(sandbox=sandbox, timestamp=ts, digest=digest, host=host or s.hostname, bytes=nbytes,
                        snapshot_id=s.id, short_id=s.short_id)


def remote_backups(restic: Restic, sandbox: str | None = None) -> list[RemoteBackup]:
    """Our snapshots in the repository (of `sandbox`), newest backup first."""
    tags = [f"{TAG_PREFIX},sandbox={sandbox}"] if sandbox else [TAG_PREFIX]
    found = [r for r in (from_snapshot(s) for s in restic.snapshots(tags=tags)) if r is not None]
    return sorted(found, key=lambda r: (parse_timestamp(r.timestamp), r.sandbox, r.host), reverse=True)


def push_backup(restic: Restic, backup: Backup, *, held: "Sequence[RemoteBackup] | Future[list[RemoteBackup]]",
                on_status: Callable[[BackupStatus], None] | None = None, hints: "set[str] | frozenset[str]" = frozenset()
                ) -> Pushed:
    """Push one committed backup unless the repository already holds its manifest digest.

    `held` may still be on its way (a Future of `remote_backups`). Then, unless `hints` (the
    digests this host knows the repository had: `known_pushed`) names this backup, restic's
    backup starts at once, beside the listing, instead of after it: each restic command pays
    its key derivation, about half a second (docs/reference/restic.md). It is stopped (SIGTERM:
    restic saves no snapshot) if the listing shows the digest already there, or fails; a
    snapshot restic finished before the listing came is forgotten again. The answer is the same
    as listing first; a hint only decides whether to wait for the listing."""
    digest = manifest_digest(backup.path)
    size = sum(f.size for f in backup.manifest.files)
    if not isinstance(held, Future):
        held = _done(held)
    if digest in hints or held.done():
        if _holds(held.result(), backup.sandbox, digest):
            return Pushed(backup.sandbox, backup.timestamp, None, size)
    point = f"push:{backup.sandbox}"
    runner = _Stoppable()

    def listed(f: "Future[list[RemoteBackup]]") -> None:
        if f.exception() is not None or _holds(f.result(), backup.sandbox, digest):
            runner.stop()

    def status(s: BackupStatus) -> None:
        if runner.pid and s.bytes_done > 0:
            _pause(point, runner.pid)
        if on_status is not None:
            on_status(s)

    held.add_done_callback(listed)
    try:
        summary = restic.backup(backup.path, tags=tags_for(backup, digest, restic.repo.host),
                                time=restic_time(backup.timestamp), on_status=status, on_started=runner.started)
    except StepError:
        remotes = held.result()  # the listing's own error first (the same repository problem, said once)
        if runner.stopped and _holds(remotes, backup.sandbox, digest):
            return Pushed(backup.sandbox, backup.timestamp, None, size)
        raise
    finally:
        runner.close()
    # The listing may show the snapshot just made (restic 0.14's summary names it by its short id).
    others = [r for r in held.result() if not r.snapshot_id.startswith(summary.snapshot_id)]
    if _holds(others, backup.sandbox, digest):
        restic.forget_ids([summary.snapshot_id])  # it was there already: one snapshot per backup
        return Pushed(backup.sandbox, backup.timestamp, None, size)
    return Pushed(backup.sandbox, backup.timestamp, summary.snapshot_id, size, summary.data_added)


def _holds(remotes: Sequence[RemoteBackup], sandbox: str, digest: str) -> bool:
    return any(r.digest == digest and r.sandbox == sandbox for r in remotes)


def _hints_file(cache_dir: Path, restic: Restic) -> Path:
    key = hashlib.sha256(restic.repo.location.encode()).hexdigest()[:16]  # never the location itself
    return cache_dir / "restic-pushed" / f"{key}.json"


def known_pushed(cache_dir: Path, restic: Restic) -> set[str]:
    """Manifest digests this host last saw in the repository (a hint, never trusted for a skip)."""
    try:
        data = json.loads(_hints_file(cache_dir, restic).read_text())
        return {d for d in data if isinstance(d, str)} if isinstance(data, list) else set()
    except (OSError, ValueError):
        return set()


def remember_pushed(cache_dir: Path, restic: Restic, digests: "set[str]") -> None:
    path = _hints_file(cache_dir, restic)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_file_atomic(path, dump_json(sorted(digests)))
    except OSError:
        pass  # only a hint: the next push lists first for these backups


def _done(value: list[RemoteBackup] | Sequence[RemoteBackup]) -> "Future[list[RemoteBackup]]":
    f: Future[list[RemoteBackup]] = Future()
    f.set_result(list(value))
    return f


class _Stoppable:
    """A restic started on another thread's behalf that may have to be stopped before, while
    or after it runs (stop() before started() stops it as soon as it runs). Signalled through a
    pidfd, so a pid reused after restic exited is never hit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pid: int | None = None
        self._fd: int | None = None
        self.stopped = False

    def started(self, pid: int) -> None:
        with self._lock:
            self.pid = pid
            try:
                self._fd = os.pidfd_open(pid)
            except OSError:
                self._fd = None
            if self.stopped:
                self._signal()

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            self._signal()

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _signal(self) -> None:
        if self._fd is None:
            return
        for sig in (signal.SIGTERM, signal.SIGCONT):  # SIGCONT: one paused at a test kill point
            try:
                signal.pidfd_send_signal(self._fd, sig)
            except ProcessLookupError:
                return


def choose(remotes: Sequence[RemoteBackup], sandbox: str, timestamp: str | None, host: str | None,
           this_host: str, shown: str) -> RemoteBackup:
    """The snapshot `pull NAME [TIMESTAMP|latest]` means. Without `host`: this host's copies if
    it has any, else those of the one host that has; several other hosts must be chosen from."""
    mine = [r for r in remotes if r.sandbox == sandbox]
    if host is not None:
        mine = [r for r in mine if r.host == host]
    elif any(r.host == this_host for r in mine):
        mine = [r for r in mine if r.host == this_host]
    else:
        hosts = sorted({r.host for r in mine})
        if len(hosts) > 1:
            raise ReplicationError(f"  Backups of '{sandbox}' in {shown} come from several hosts ({', '.join(hosts)}): "
                                   f"choose one with --host.")
    if not mine:
        raise ReplicationError(f"  The backup repository {shown} holds no backup of '{sandbox}'"
                               + (f" from host {host}" if host else "") + ": see `nemoclaw backups list --remote`.")
    if timestamp in (None, "latest"):
        return mine[0]
    chosen = next((r for r in mine if r.timestamp == timestamp), None)
    if chosen is None:
        raise ReplicationError(f"  The backup repository {shown} holds no backup of '{sandbox}' taken at {timestamp}: "
                               "see `nemoclaw backups list --remote`.")
    return chosen


def local_copy(store: BackupStore, remote: RemoteBackup) -> Path | None:
    """The local directory holding this very backup (same manifest digest), if any."""
    dest = store.dest_for(remote.sandbox, remote.timestamp)
    if not os.path.lexists(dest):
        return None
    try:
        return dest if not dest.is_symlink() and manifest_digest(dest) == remote.digest else None
    except OSError:
        return None


def pull(restic: Restic, store: BackupStore, staging: Staging, sandbox: str, timestamp: str | None,
         host: str | None, *, on_chosen: Callable[[RemoteBackup], None] | None = None) -> tuple[RemoteBackup, Path | None]:
    """`pull NAME [TIMESTAMP|latest] [--host H]`: choose the snapshot (`choose`), restore it into
    `staging`, check it, commit it under its original timestamp. Returns the snapshot and where
    it was committed (None: the store already holds it).

    The listing and the restore run side by side: restic restores `latest` of the snapshots
    tagged with the sandbox (and the timestamp, and the host, when given) while the listing
    says which one we want. When restic's `latest` is another snapshot (another host's newer
    copy, a push in between), that restore is discarded and the chosen one restored by id."""
    name = f"pull-{sandbox}"[:200]
    target = staging.dir_for(name)
    tag = f"{TAG_PREFIX},sandbox={sandbox}" + (f",timestamp={timestamp}" if timestamp not in (None, "latest") else "")
    runner = _Stoppable()
    try:
        with ThreadPoolExecutor(1) as pool, EarlyWriteback(staging.path):
            restoring = pool.submit(restic.restore, "latest", target, tags=[tag], host=host, on_started=runner.started)
            try:
                remote = choose(remote_backups(restic, sandbox), sandbox, timestamp, host, restic.repo.host,
                                restic.repo.shown)
                dest = store.dest_for(remote.sandbox, remote.timestamp)
                if local_copy(store, remote) is not None:
                    runner.stop()
                    return remote, None
                if os.path.lexists(dest):
                    raise ReplicationError(f"A different local backup of '{remote.sandbox}' already exists at {dest}: "
                                           "move it away to pull the repository's copy.")
            except BaseException:
                runner.stop()
                raise
            if on_chosen is not None:
                on_chosen(remote)
            failed: ResticError | None = None
            try:
                restored = restoring.result()
            except ResticError as exc:
                restored, failed = exc.snapshot, exc
    finally:
        runner.close()
    if restored is None or not remote.snapshot_id.startswith(restored):
        with EarlyWriteback(staging.path):
            restic.restore(remote.snapshot_id, staging.fresh_dir(name))
    elif failed is not None:
        raise failed
    return remote, _check_and_commit(restic, staging, name, remote, dest)


def pull_backup(restic: Restic, store: BackupStore, staging: Staging, remote: RemoteBackup) -> Path | None:
    """Restore `remote` into `staging`, check it, commit it into the store under its original
    timestamp. None when the store already holds it (same digest). Raises ReplicationError with
    nothing committed when anything does not match."""
    dest = store.dest_for(remote.sandbox, remote.timestamp)
    if local_copy(store, remote) is not None:
        return None
    if os.path.lexists(dest):
        raise ReplicationError(f"A different local backup of '{remote.sandbox}' already exists at {dest}: "
                               "move it away to pull the repository's copy.")
    name = f"pull-{remote.sandbox}"[:200]
    with EarlyWriteback(staging.path):
        restic.restore(remote.snapshot_id, staging.dir_for(name))
    return _check_and_commit(restic, staging, name, remote, dest)


def _check_and_commit(restic: Restic, staging: Staging, name: str, remote: RemoteBackup, dest: Path) -> Path:
    _pause(f"pull:{remote.sandbox}", None)
    problem = _check_restored(staging.dir_for(name), remote)
    if problem is not None:
        raise ReplicationError(f"The copy of '{remote.sandbox}' {remote.timestamp} in {restic.repo.shown} is damaged "
                               f"({problem}); nothing was committed: run `nemoclaw backups verify --remote`.")
    try:
        return staging.commit(name, dest)
    except StoreError as exc:
        raise ReplicationError(f"Could not commit the pulled backup of '{remote.sandbox}': {exc}") from None


def _check_restored(target: Path, remote: RemoteBackup) -> str | None:
    try:
        digest = manifest_digest(target)
    except OSError:
        return "its manifest is missing"
    if digest != remote.digest:
        return "its manifest is not the one it was pushed with"
    try:
        m = load_manifest(target / MANIFEST_NAME)
        if m.sandbox_name != remote.sandbox or m.timestamp != remote.timestamp:
            return f"its manifest names {m.sandbox_name} {m.timestamp}"
        check_against_agent(m, load_agent(m.agent_type), target / MANIFEST_NAME)
    except ManifestError as exc:
        return str(exc)
    mismatch = verify(target, m, hash_files=False)  # every entry there, with its type and size, nothing else
    if mismatch is not None:
        return str(mismatch)
    return _hash_all(target, m)


def _hash_all(target: Path, m: Any) -> str | None:
    """The one read pass: every file's SHA-256 against the manifest, on two threads (hashlib
    lets go of the GIL, so the second core hashes too); the first mismatch, or None."""
    def bad(f: Any) -> str | None:
        fd = os.open(target / f.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            got = hashlib.file_digest(fh, "sha256").hexdigest()
        return None if got == f.sha256 else f"{f.path}: sha256 {got} where the manifest says {f.sha256}"

    with ThreadPoolExecutor(2) as pool:
        for problem in pool.map(bad, sorted(m.files, key=lambda f: -f.size)):
            if problem is not None:
                return problem
    return None


def _pause(point: str, pid: int | None) -> None:
    """The test kill point (module docstring); a no-op unless NEMOCLAW_TEST_PAUSE_AT names it."""
    if os.environ.get(PAUSE_ENV) != point or point in _PAUSED:
        return
    _PAUSED.add(point)
    if pid is not None:
        os.kill(pid, signal.SIGSTOP)
    marker = os.environ.get(PAUSE_MARKER_ENV)
    if marker:
        tmp = f"{marker}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{os.getpid()} {point}\n")
        os.replace(tmp, marker)
    deadline = time.monotonic() + _PAUSE_MAX_SECONDS
    try:
        while time.monotonic() < deadline:
            if marker and not os.path.exists(marker):
                return
            time.sleep(0.05)
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGCONT)


_PAUSED: set[str] = set()
