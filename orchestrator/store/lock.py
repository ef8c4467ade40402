"""The single-writer lock: one backup/upgrade run at a time per NemoClaw home.

The lock file is created complete in one step (written to a temp file, flock'ed, then
hard-linked into place: link(2) fails if the name exists, so two processes can never both
win) and stays flock'ed while held. A holder is live if it still holds the flock, or if its
recorded process (pid + start time + boot id, so a recycled pid does not count) still runs.
A dead holder's lock is broken, under the old file's own flock so that two breakers cannot
both replace it. Release removes the file only if it is still ours.

A lock path that exists and is not a regular file (a symbolic link, a directory) is never
used, followed or removed: `check_lock_path` says so in one sentence, and a run checks it
before it writes anything (engine/run.py).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import uuid
from pathlib import Path
from types import TracebackType

import attrs

from ..kernel import atomic
from ..kernel.owner import hostname, pid_alive, process_start_ticks
from . import fsops
from .errors import LockHeld, StoreError
from .staging import Owner

__all__ = ["WriterLock", "BrokenLock", "LockHeld", "LockUnusable", "check_lock_path", "held_here", "read_lock"]

_MAX_ATTEMPTS = 20


class LockUnusable(StoreError):
    """The lock path exists and is not a regular file (a person's mistake, never ours)."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def check_lock_path(path: Path) -> None:
    """Raise LockUnusable when `path` exists and is not a regular file (absent is fine)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LockUnusable(f"Cannot use the lock path {path} ({exc.strerror or exc}); "
                           "fix its directory's permissions and run the command again.") from None
    if not stat.S_ISREG(st.st_mode):
        raise _unusable(path, st.st_mode)


def _unusable(path: Path, mode: int) -> LockUnusable:
    return LockUnusable(f"The lock path {path} is {_kind(mode)}, not a regular file; "
                        "move it out of the way and run the command again.")


@attrs.frozen
class BrokenLock:
    """A stale lock this run broke; `message` is the line to print."""

    previous: Owner | None
    path: Path
    reason: str

    @property
    def message(self) -> str:
        if self.previous is None:
            return f"  Broke stale lock {self.path} ({self.reason})."
        return f"  Broke stale lock of run {self.previous.run_id} ({self.reason})."


def _held_message(path: Path, holder: Owner | None, why: str) -> str:
    if holder is None:
        return (
            f"Another nemoclaw run holds the lock {path} ({why}). "
            "Wait for it to finish and run the command again."
        )
    return (
        f"Another nemoclaw run is in progress: run {holder.run_id}, pid {holder.pid} on host {holder.host}, "
        f"started {holder.started_at} (lock {path}). Wait for it to finish and run the command again"
        + (f"; if that host's process is gone, remove {path}." if why == "other host" else ".")
    )


@attrs.define
class WriterLock:
    """`with WriterLock(paths.lock_file, run_id) as lock:` — raises LockHeld (exit_code 75) if a
    live run holds it; `lock.broken` tells (once) that a dead run's lock was broken."""

    path: Path
    run_id: str
    broken: BrokenLock | None = None
    _fd: int | None = None
    _owner: Owner | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "WriterLock":
        if self._fd is not None:
            raise StoreError(f"lock {self.path} is already held by this run")
        fsops.makedirs_private(self.path.parent)
        check_lock_path(self.path)
        owner = Owner.current(self.run_id)
        tmp = self.path.parent / f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, atomic.dump_json(owner.to_json()))
            os.fsync(fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fresh inode: cannot be contended
            for _ in range(_MAX_ATTEMPTS):
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    self._inspect_existing()  # raises LockHeld, or removes a stale lock
                    continue
                atomic.fsync_dir(self.path.parent)
                self._fd, self._owner = fd, owner
                return self
            raise LockHeld(_held_message(self.path, None, "it keeps changing"))
        except BaseException:
            os.close(fd)
            raise
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def _inspect_existing(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # released meanwhile: try again
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _unusable(self.path, stat.S_IFLNK) from None  # replaced by a link meanwhile
            raise
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise _unusable(self.path, mode)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockHeld(_held_message(self.path, _parse(fd), "flock held"), _parse(fd)) from None
            # We now hold the old file's flock: nobody else can be breaking it at the same time.
            holder = _parse(fd)
            if holder is not None and holder.host != hostname():
                raise LockHeld(_held_message(self.path, holder, "other host"), holder)
            if holder is not None and pid_alive(holder.pid, holder.proc_start, holder.boot_id):
                raise LockHeld(_held_message(self.path, holder, "process alive"), holder)
            try:
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                return
            if not same:
                return  # someone else replaced it already: look again
            os.unlink(self.path)
            atomic.fsync_dir(self.path.parent)
            reason = f"pid {holder.pid} is gone" if holder is not None else "lock file unreadable, no process holds it"
            self.broken = BrokenLock(previous=holder, path=self.path, reason=reason)
        finally:
            os.close(fd)

    def release(self) -> None:
        """Remove the lock file if it is still ours, then drop the flock. Idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            try:
                if os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                    os.unlink(self.path)
                    atomic.fsync_dir(self.path.parent)
            except FileNotFoundError:
                pass
        finally:
            os.close(fd)

    def __enter__(self) -> "WriterLock":
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _parse(fd: int) -> Owner | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        return Owner.from_json(json.loads(raw))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def read_lock(path: Path) -> Owner | None:
    """Who holds (or last held) the lock at `path`, for status displays; None if absent/corrupt."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _parse(fd)
    finally:
        os.close(fd)


def held_here(path: Path) -> bool:
    """Whether this process holds the lock at `path` (a run, or a command, took it and has not
    released it): code running inside a run, such as a step, must not take it a second time
    (its own flock would refuse it, as if another run held it)."""
    holder = read_lock(path)
    if holder is None or holder.pid != os.getpid() or holder.host != hostname():
        return False
    return holder.proc_start is None or holder.proc_start == process_start_ticks(os.getpid())
