"""Capture one sandbox's state into a staged directory, and describe it with a manifest.

The backup side of the Docker transport: each declared state directory and state file of the
agent is fetched with `get_archive` and streamed through `archive.extract_stream` (hostile
entries refused, links recorded, FIFOs and device nodes skipped and listed). The state
directories are fetched concurrently (a few streams at once: the engine builds each tar in its
own goroutine), then the state files. A path missing in the sandbox is simply not backed up
(NemoClaw's existence probe does the same); a path that is not what the agent declares (a state
dir that is a file or symlink), or an unreadable stream, fails that path. Rejected entries make
the capture not `ok`: a caller must then discard the staged directory, never commit it. The
reasons are kept (`failed_dirs`, `archive.rejected`) for the caller to print, and so are the
skipped entries (`skipped_line()`).

`check_staged` is what a commit runs instead of re-hashing the staged copy: see
`archive.check_written`.

A missing *container* is never a missing path: Docker answers both with NotFound, so every
NotFound is checked against the container itself, and a container that is gone fails the whole
capture (`CaptureError`). So do a disk that would fill up (free space minus a reserve, checked
before the first path and while streaming) and a sandbox larger than the configured per-sandbox
limit (`SpaceBudget`, docs/backups.md).

`sqlite_backup` state files are copied as they are: a consistent SQLite snapshot needs a
helper inside the sandbox (NemoClaw runs python's sqlite3 backup there); the copy is exact if
the agent is idle.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from stat import S_ISREG as stat_is_regular
from typing import TYPE_CHECKING, Any, Callable

import attrs

from ..kernel.sizes import human_size
from .archive import ArchiveResult, HostLimits, ProgressCallback, check_written, describe_entries, extract_stream
from .errors import ArchiveError, CaptureError
from .manifest import MANIFEST_NAME, MANIFEST_VERSION, Manifest, Mismatch, StateFile, load_manifest, manifest_bytes
from .records import Record

if TYPE_CHECKING:  # the definitions are an adapter: the store only reads their fields
    from ..adapters.agents.definitions import AgentSpec

__all__ = ["Capture", "SpaceBudget", "capture_sandbox", "build_manifest", "check_staged", "parse_size", "stage_manifest",
           "staged_manifest_of"]

_FETCH_THREADS = 4

#: Upstream's safety reserve (NemoClaw #11767, docs/reference/backups.md): 64 MiB stay free.
DEFAULT_RESERVE = 64 * 1024 * 1024
LIMIT_ENV = "NEMOCLAW_BACKUP_MAX_BYTES"
RESERVE_ENV = "NEMOCLAW_BACKUP_RESERVE_BYTES"
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
#: With no NEMOCLAW_BACKUP_MAX_BYTES, one sandbox's backup may use at most this share of the
#: space free on the backup filesystem when its capture starts (docs/backups.md).
DEFAULT_LIMIT_SHARE = 0.5
_STATVFS_EVERY = 1 << 20
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str, what: str) -> int:
    """`123`, `64M`, `2GiB` as bytes (whole numbers only); a clear error naming `what` otherwise."""
    m = _SIZE_RE.match(text)
    if not m:
        raise CaptureError(f"{what}={text!r} is not a size: use bytes or a number with K, M, G or T (e.g. 20G)")
    unit = (m[2] or "").upper()[:1]
    return int(m[1]) * _UNITS[unit]


@attrs.define
class SpaceBudget:
    """How much one sandbox's capture may write to disk: at most `limit` bytes (None: no limit),
    or, with `share`, that share of the space free when the capture starts; and never so much
    that less than `reserve` bytes stay free on the staging filesystem. What counts is what is
    written: a sparse file's holes are not (archive._SparseWriter)."""

    limit: int | None = None
    reserve: int = DEFAULT_RESERVE
    used: int = 0
    share: float | None = None
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False, eq=False)
    _statted: int | None = attrs.field(default=None, repr=False, eq=False)  # `used` at the last statvfs

    def consume(self, nbytes: int, dest: Path) -> None:
        """Count `nbytes` more written (by any of the concurrent fetches), then check: the limit
        every time, the free space (a statvfs) once per `_STATVFS_EVERY` bytes counted, so that
        20,000 small files do not cost 20,000 statvfs calls (the reserve is 64 MiB: a check at
        most 1 MiB late per stream still stops well before the disk is full)."""
        with self._lock:
            self.used += nbytes
            due = self._statted is None or self.used - self._statted >= _STATVFS_EVERY
            if due:
                self._statted = self.used
            over = self.limit is not None and self.used > self.limit
        if due or over:
            self.check(dest)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SpaceBudget":
        env = os.environ if env is None else env
        limit = env.get(LIMIT_ENV, "").strip()
        reserve = env.get(RESERVE_ENV, "").strip()
        share: float | None = DEFAULT_LIMIT_SHARE if not limit else None
        pct = _PERCENT_RE.match(limit)
        if pct:
            share = float(pct[1]) / 100
            if not 0 < share <= 1:
                raise CaptureError(f"{LIMIT_ENV}={limit!r} is not a share of the free space: use more than 0 % and at most 100 %")
        elif limit.lower() == "none":
            share = None
        return cls(
            limit=parse_size(limit, LIMIT_ENV) if limit and not pct and limit.lower() != "none" else None,
            reserve=parse_size(reserve, RESERVE_ENV) if reserve else DEFAULT_RESERVE,
            share=share,
        )

    def check(self, dest: Path, incoming: int = 0) -> None:
        """Raise CaptureError if `incoming` more bytes would pass the limit or the reserve."""
        st = os.statvfs(dest)
        free = st.f_bavail * st.f_frsize
        if self.limit is None and self.share is not None:
            with self._lock:  # the first check of this capture fixes the share as bytes
                if self.limit is None:
                    self.limit = int((free + self.used) * self.share)
        if self.limit is not None and self.used + incoming > self.limit:
            how = (f"{self.share * 100:g} % of the space free when it started; {LIMIT_ENV}" if self.share is not None
                   else LIMIT_ENV)
            raise CaptureError(
                f"its state is larger than the per-sandbox limit of {human_size(self.limit)} ({how}); "
                "nothing of it was committed. Raise the limit or free the sandbox's state, then rerun"
            )
        if free - incoming < self.reserve:
            raise CaptureError(
                f"not enough free space for its backup on the filesystem of {dest}: {human_size(free)} free, "
                f"{human_size(self.reserve)} must stay free ({RESERVE_ENV}); nothing of it was committed. "
                "Free some space (e.g. `nemoclaw backups prune`), then rerun"
            )

_GO_MODE_DIR = 1 << 31  # Go os.FileMode bits in Docker's X-Docker-Container-Path-Stat header
_GO_MODE_TYPE = (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)


@attrs.define
class Capture:
    state_dirs: list[str]
    backed_up_dirs: list[str] = attrs.field(factory=list)
    failed_dirs: dict[str, str] = attrs.field(factory=dict)  # name -> why
    backed_up_files: list[StateFile] = attrs.field(factory=list)
    failed_files: dict[str, str] = attrs.field(factory=dict)
    archive: ArchiveResult = attrs.field(factory=ArchiveResult)
    # The manifest `stage_manifest` wrote for this capture and the SHA-256 of its bytes.
    staged_manifest: tuple[Manifest, str] | None = None

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing was refused: the staged directory may be committed."""
        return not self.failed_dirs and not self.failed_files and not self.archive.rejected

    @property
    def empty(self) -> bool:
        """The capture holds no entry at all (no state dir or file of the agent, or an empty
        home): worth a warning, since a backup with nothing in it must not look like a good one.
        Read from the records, so it holds for both scopes (a whole-home capture lists only
        top-level directories as backed-up dirs, yet may hold files alone)."""
        a = self.archive
        return not a.files and not a.dirs and not a.symlinks

    def failures(self) -> list[str]:
        """`workspace (3 unsafe entries refused: ...)`, one item per failed path, as upstream's
        `backup failed (<item (reason)>, ...)` line lists them."""
        return [f"{name} ({why})" for name, why in {**self.failed_dirs, **self.failed_files}.items()]


    def skipped_line(self) -> str | None:
        """`skipped 2 special files: agents/pipe (FIFO), agents/dev (device node)`, or None."""
        n = len(self.archive.skipped)
        if not n:
            return None
        return f"skipped {n} special file{'' if n == 1 else 's'}: {describe_entries(self.archive.skipped)}"


def _container_gone(container: Any) -> CaptureError | None:
    """A CaptureError if the container no longer exists (or is on its way out), else None."""
    import docker.errors

    name = getattr(container, "name", "?")
    try:
        container.reload()
    except docker.errors.NotFound:
        return CaptureError(f"its container {name} no longer exists; nothing of it was committed")
    except docker.errors.APIError as exc:
        return CaptureError(f"cannot inspect its container {name}: {exc.explanation or exc}")
    status = (getattr(container, "attrs", None) or {}).get("State", {}).get("Status")
    if status in ("removing", "dead"):  # on its way out: as good as gone
        return CaptureError(f"its container {name} no longer exists (it is being removed); nothing of it was committed")
    # A stopped container (exited/created) is read as it is: Docker serves its archive, and a
    # sandbox in phase Stopped or Error is backed up that way (docs/reference/sandbox-lifecycle.md).
    if status not in (None, "running", "paused", "exited", "created"):
        return CaptureError(f"its container {name} is {status} while it is read; nothing of it was committed")
    return None


def _fetch(container: Any, path: str, dest: Path, *, prefix: str, want_dir: bool,
           on_progress: ProgressCallback | None, budget: SpaceBudget,
           skip: Callable[[str], bool] | None = None, limits: HostLimits | None = None) -> ArchiveResult | str | None:
    """ArchiveResult on success, None if the path is absent, or a reason string on failure.
    A `path` ending in `/.` streams a directory's contents (entries relative to it); `skip`
    leaves paths out (archive.extract_stream). Raises CaptureError when the container is gone
    or the budget would be exceeded."""
    import docker.errors  # here, not at import: a command that never captures never loads docker

    try:
        res_http, chunks, stat = _open_archive(container, path)
    except docker.errors.NotFound:
        gone = _container_gone(container)
        if gone is not None:
            raise gone from None
        return None
    except docker.errors.APIError as exc:
        gone = _container_gone(container)
        if gone is not None:
            raise gone from None
        return f"cannot read {path}: {exc.explanation or exc}"
    try:
        return _extract(res_http, chunks, stat, container, path, dest, prefix=prefix, want_dir=want_dir,
                        on_progress=on_progress, budget=budget, skip=skip, limits=limits)
    finally:
        res_http.close()  # a read given up (the freeze limit, a cancel) must not hold the engine's container lock


def _extract(res_http: Any, chunks: Any, stat: dict[str, Any] | None, container: Any, path: str, dest: Path, *,
             prefix: str, want_dir: bool, on_progress: ProgressCallback | None, budget: SpaceBudget,
             skip: Callable[[str], bool] | None, limits: HostLimits | None) -> ArchiveResult | str:
    mode = int((stat or {}).get("mode", 0))
    is_dir = bool(mode & _GO_MODE_DIR)
    is_regular = not (mode & _GO_MODE_TYPE)
    if want_dir and not is_dir:
        return f"{path} is not a directory"
    if not want_dir and not is_regular:
        return f"{path} is not a regular file"
    # The archive stat is exact for a file; a directory's size is known only while streaming.
    budget.check(dest, int((stat or {}).get("size", 0) or 0) if not is_dir else 0)
    counted = [0]  # bytes of this stream written to disk and counted in the (shared) budget

    def stored(nbytes: int) -> None:
        budget.consume(nbytes - counted[0], dest)
        counted[0] = nbytes

    try:
        only = None if path.endswith("/.") else posixpath.basename(path)
        res = extract_stream(chunks, dest, prefix=prefix, only_under=only, on_progress=on_progress, skip=skip,
                             limits=limits or HostLimits.below(dest), on_stored=stored)
    except ArchiveError as exc:
        res_http.close()  # before asking the engine about the container: it holds its lock while the stream is open
        gone = _container_gone(container)
        if gone is not None:
            raise gone from None
        return str(exc)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CaptureError(f"the disk filled up while writing its backup under {dest} ({exc.strerror}); "
                               "nothing of it was committed. Free some space, then rerun") from None
        raise
    budget.consume(res.stored - counted[0], dest)
    return res


def _open_archive(container: Any, path: str) -> tuple[Any, Any, dict[str, Any] | None]:
    """What the docker SDK's `get_archive` does, keeping the response to close it: (response,
    its chunks, the path's stat). Raises the SDK's NotFound / APIError like it."""
    from docker.utils import decode_json_header

    api = container.client.api
    res = api._get(api._url("/containers/{0}/archive", container.id), params={"path": path}, stream=True,
                   headers={"Accept-Encoding": "identity"})
    try:
        api._raise_for_status(res)
    except BaseException:
        res.close()
        raise
    raw = res.headers.get("x-docker-container-path-stat")
    return res, api._stream_raw_result(res, 2 << 20, False), decode_json_header(raw) if raw else None


def _refusal(res: ArchiveResult) -> str:
    """`3 unsafe entries refused: a/b (absolute path), ...`: the reasons, not just a count."""
    n = len(res.rejected)
    return f"{n} unsafe entr{'y' if n == 1 else 'ies'} refused: {describe_entries(res.rejected)}"


def capture_sandbox(
    container: Any,
    agent: AgentSpec,
    dest: Path,
    *,
    extra_dirs: list[str] | None = None,
    on_progress: ProgressCallback | None = None,
    budget: SpaceBudget | None = None,
    store_at: Path | None = None,
) -> Capture:
    """Fetch the agent's state from `container` (a docker SDK Container) into `dest` (an empty
    staged directory). `extra_dirs` adds discovered directories (NemoClaw's `workspace-*`).
    `store_at` is where it will be committed: an entry whose path would be too long for the
    host there (or in `dest`) is refused (archive.HostLimits).

    Raises CaptureError (nothing may be committed) when the container is gone or the capture
    would pass `budget` (default: `SpaceBudget.from_env()`)."""
    budget = budget if budget is not None else SpaceBudget.from_env()
    gone = _container_gone(container)
    if gone is not None:
        raise gone
    budget.check(dest)
    state_dirs = list(agent.state_dirs) + [d for d in (extra_dirs or []) if d not in agent.state_dirs]
    cap = Capture(state_dirs=state_dirs)
    limits = HostLimits.below(dest, *([store_at] if store_at is not None else []))
    progress = _Progress(on_progress)
    jobs = [(name, posixpath.join(agent.dir, name), "", True) for name in state_dirs]
    with ThreadPoolExecutor(max_workers=min(_FETCH_THREADS, max(1, len(jobs))), thread_name_prefix="fetch") as pool:
        dir_results = list(pool.map(lambda j: _fetch(container, j[1], dest, prefix=j[2], want_dir=j[3],
                                                     on_progress=progress.callback(), budget=budget, limits=limits),
                                    jobs))
    for name, res in zip(state_dirs, dir_results):
        if isinstance(res, str):
            cap.failed_dirs[name] = res
        elif res is not None:
            cap.archive.merge(res)
            if res.rejected:
                cap.failed_dirs[name] = _refusal(res)
            else:
                cap.backed_up_dirs.append(name)
    for sf in agent.state_files:  # after the dirs: a state file may live in a state dir's parent
        parent = posixpath.dirname(sf.path)
        res = _fetch(container, posixpath.join(agent.dir, sf.path), dest, prefix=parent, want_dir=False,
                     on_progress=progress.callback(), budget=budget, limits=limits)
        if isinstance(res, str):
            cap.failed_files[sf.path] = res
        elif res is not None:
            cap.archive.merge(res)
            if res.rejected:
                cap.failed_files[sf.path] = _refusal(res)
            else:
                cap.backed_up_files.append(StateFile(path=sf.path, strategy=sf.strategy))
    # Docker's archive walk passes over files that vanish under it: a container removed during the
    # last stream can give a well-formed but partial tar, so it must still exist afterwards.
    gone = _container_gone(container)
    if gone is not None:
        raise gone
    return cap


class _Progress:
    """Sums the per-stream totals of concurrent fetches into one growing total for the caller."""

    def __init__(self, on_progress: ProgressCallback | None) -> None:
        self._cb = on_progress
        self._lock = threading.Lock()
        self._bytes = 0
        self._files = 0

    def callback(self) -> ProgressCallback | None:
        if self._cb is None:
            return None
        last = [0, 0]

        def report(nbytes: int, files: int) -> None:
            with self._lock:
                self._bytes += nbytes - last[0]
                self._files += files - last[1]
                last[0], last[1] = nbytes, files
                total = (self._bytes, self._files)
            assert self._cb is not None
            self._cb(*total)

        return report


def stage_manifest(staged: Path, capture: Capture, manifest: Manifest) -> Path:
    """Write the manifest of a capture into its staged directory, and keep it on the capture
    with the SHA-256 of the bytes written, for `check_staged`. No fsync of its own: nothing
    staged is durable or visible before the commit, whose syncfs covers this file too (a crash
    before it loses the whole staging area, swept at the next start)."""
    data = manifest_bytes(manifest)
    path = Path(staged) / MANIFEST_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    capture.staged_manifest = (manifest, hashlib.sha256(data).hexdigest())
    return path


def staged_manifest_of(staged: Path, capture: Capture | None) -> Manifest:
    """The manifest of a staged capture: the one `stage_manifest` kept, else read from disk."""
    if capture is not None and capture.staged_manifest is not None:
        return capture.staged_manifest[0]
    return load_manifest(staged)


def _manifest_on_disk_is(staged: Path, digest: str) -> bool:
    try:
        fd = os.open(Path(staged) / MANIFEST_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not stat_is_regular(os.fstat(fd).st_mode):
            return False
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        return h.hexdigest() == digest
    finally:
        os.close(fd)


def check_staged(staged: Path, capture: Capture) -> Mismatch | None:
    """Prove, without re-reading the data, that the staged directory is what was hashed: its
    manifest (as written on disk) lists exactly the records of the capture, and the tree holds
    exactly those entries, every file the very inode written and hashed, unchanged since
    (`archive.check_written`). The first difference, or None.

    A manifest `stage_manifest` wrote in this process is not parsed back: its bytes on disk are
    compared (SHA-256) with the bytes made from the manifest object kept in memory, which
    proves the file is that manifest (the round trip of the format itself is the manifest
    tests' job); parsing 20,000 records back with the strict converter cost more than the rest
    of the commit."""
    if capture.staged_manifest is not None:
        manifest, digest = capture.staged_manifest
        if not _manifest_on_disk_is(staged, digest):
            return Mismatch(MANIFEST_NAME, "rejected", None, "the manifest changed after it was written")
    else:
        manifest = load_manifest(staged)
    a = capture.archive
    pairs: tuple[tuple[str, list[Record], list[Record]], ...] = (("file", sorted(manifest.files, key=lambda r: r.path), sorted(a.files, key=lambda r: r.path)),
             ("symlink", sorted(manifest.symlinks, key=lambda r: r.path), sorted(a.symlinks, key=lambda r: r.path)))
    for kind, listed, got in pairs:
        if listed != got:
            diff = sorted({r.path for r in listed} ^ {r.path for r in got}) or sorted(
                r.path for r, g in zip(listed, got) if r != g)
            return Mismatch(diff[0] if diff else "?", "type", f"{kind} as captured", "different in the manifest")
    bad = check_written(staged, a)
    if bad is not None:
        return Mismatch(bad.path, "rejected", None, bad.reason)
    return None


def build_manifest(
    capture: Capture,
    agent: AgentSpec,
    *,
    sandbox: str,
    timestamp: str,
    backup_path: Path,
    agent_version: str | None = None,
    blueprint_digest: str | None = None,
    policy_presets: list[str] | None = None,
    name: str | None = None,
    image: str | None = None,
) -> Manifest:
    """The manifest for a capture; `backup_path` is the final (committed) location."""
    return Manifest(
        version=MANIFEST_VERSION,
        sandbox_name=sandbox,
        timestamp=timestamp,
        agent_type=agent.name,
        agent_version=agent_version,
        expected_version=agent.expected_version,
        state_dirs=list(capture.state_dirs),
        backed_up_dirs=list(capture.backed_up_dirs),
        state_files=list(capture.backed_up_files),
        dir=agent.dir,
        backup_path=str(backup_path),
        blueprint_digest=blueprint_digest,
        policy_presets=list(policy_presets or []),
        files=sorted(capture.archive.files, key=lambda f: f.path),
        dirs=sorted(capture.archive.dirs, key=lambda d: d.path),
        symlinks=sorted(capture.archive.symlinks, key=lambda s: s.path),
        name=name,
        sandbox_image=image,
    )
