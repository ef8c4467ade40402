"""Small filesystem and process helpers shared by the store modules (private).

Everything here exists for durability (fsync of files *and* directories, so a rename survives a
power cut) or for telling a live process from a dead one without trusting a pid alone.
"""

from __future__ import annotations

import errno
import os
import stat
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ctypes

# The durable write and the process identity live in the kernel (the journal, the lock and the
# registry file use them too); re-exported for the store modules.
from ..kernel.atomic import dump_json, fsync_dir, write_file_atomic  # noqa: F401
from ..kernel.owner import boot_id, hostname, pid_alive, process_start_ticks  # noqa: F401


def makedirs_private(path: Path, mode: int = 0o700) -> None:
    """Create `path` and any missing parents with `mode` (os.makedirs only applies it to the leaf)."""
    missing: list[Path] = []
    p = path
    while not p.exists() and not p.is_symlink():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, mode)
        except FileExistsError:
            continue
        os.chmod(d, mode)  # umask may have narrowed it; never widened beyond `mode`
        fsync_dir(d.parent)


TRASH_PREFIX = ".trash-"


def remove_tree(path: Path) -> None:
    """Remove `path` without following symlinks. A directory is first renamed aside to
    `.trash-<name>-<random>` in the same parent, so an interrupted removal never leaves a
    half-deleted directory under its real name (listings skip dot-names)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)  # a symlink or file: remove the entry itself, never its target
        return
    trash = path.parent / f"{TRASH_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash)  # fd-based on Linux: never follows symlinks
    fsync_dir(path.parent)


def _load_libc() -> "ctypes.CDLL":
    """The C library by its soname first: `ctypes.util.find_library` runs `ldconfig -p` in a
    subprocess (a few ms to tens of ms per call, twice per backup-all). ctypes is imported here,
    at the first commit, not with the module (the writer lock loads it in every run)."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _libc_syncfs() -> Any:
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = _load_libc()
            _LIBC.syncfs.argtypes = [_c_int()]
        except (OSError, AttributeError):
            _LIBC = False
    return None if _LIBC is False else _LIBC.syncfs


def _c_int() -> Any:
    import ctypes

    return ctypes.c_int


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def _syncfs(path: Path) -> bool:
    """syncfs(2) on the filesystem holding `path`: one journal commit for everything written,
    instead of one per fsync'd file (2,000 files: seconds). False where it is not available."""
    syncfs = _libc_syncfs()
    if syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            err = _errno()
            raise OSError(err, f"syncfs({path}): {os.strerror(err)}")
        return True
    finally:
        os.close(fd)


_LIBC: "ctypes.CDLL | bool | None" = None


class _Writeback:
    """Early write-back of one filesystem while a capture streams into it: after every
    `EVERY` bytes stored, a background thread runs syncfs(2), so the data goes to disk while
    the stream goes on instead of all of it at the commit's syncfs (the kernel's own flusher
    starts only at 10 % of RAM dirty: never, for most backups).

    The crash guarantee does not rest on it: it only moves work earlier. The commit's
    `fsync_tree` still runs its own syncfs, after waiting for one in flight here, and an error a
    background syncfs saw is raised there (a write-back error is reported once per open file of
    the filesystem, so the one this thread's descriptor took would otherwise be lost to the
    commit). Nothing is renamed into place unless every syncfs since the capture began succeeded."""

    EVERY = 32 << 20

    def __init__(self, root: Path) -> None:
        # Held open for the process (one per filesystem): the staged directory it was opened on
        # may be renamed into place or removed meanwhile; syncfs needs only some fd of the filesystem.
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.pending = 0
        self.error: OSError | None = None
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def stored(self, nbytes: int) -> None:
        with self.lock:
            self.pending += nbytes
            if self.pending < self.EVERY or (self.thread is not None and self.thread.is_alive()):
                return
            self.pending = 0
            self.thread = threading.Thread(target=self._run, name="writeback", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        syncfs = _libc_syncfs()
        try:
            if syncfs(self.fd) != 0:
                err = _errno()
                raise OSError(err, f"syncfs: {os.strerror(err)}")
        except OSError as exc:
            with self.lock:
                self.error = self.error or exc

    def drain(self) -> None:
        """Wait for a syncfs in flight; raise the first error one saw."""
        with self.lock:
            thread = self.thread
        if thread is not None:
            thread.join()
        with self.lock:
            error, self.error = self.error, None
        if error is not None:
            raise error


_WRITEBACK: dict[int, _Writeback] = {}
_WRITEBACK_LOCK = threading.Lock()


def _writeback_for(path: Path) -> _Writeback:
    dev = os.stat(path).st_dev
    with _WRITEBACK_LOCK:
        wb = _WRITEBACK.get(dev)
        if wb is None:
            wb = _WRITEBACK[dev] = _Writeback(Path(path))
        return wb


def start_writeback(path: Path) -> Callable[[int], None]:
    """A callback to hear each number of bytes newly stored below `path` (a capture's staging
    directory): it starts the early write-back of `_Writeback`. Only where syncfs exists."""
    if _libc_syncfs() is None:
        return lambda nbytes: None
    return _writeback_for(path).stored


def fsync_tree(root: Path) -> None:
    """Make every regular file and directory below `root` durable (symlinks not followed):
    syncfs(2) of its filesystem on Linux (it reports write-back errors since Linux 5.8), else
    fsync of each file and directory. An early write-back of that filesystem still in flight
    is waited for first, and its error raised (`_Writeback`)."""
    if _libc_syncfs() is not None:
        with _WRITEBACK_LOCK:
            wb = _WRITEBACK.get(os.stat(root).st_dev)
        if wb is not None:
            wb.drain()
    if _syncfs(root):
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        fsync_dir(Path(dirpath))


_RENAME_NOREPLACE = 1
_libc: Any = None


def rename_noreplace(src: Path, dst: Path) -> None:
    """Atomic rename that fails with FileExistsError if `dst` exists (even an empty directory,
    which plain rename(2) would silently replace). Uses renameat2(RENAME_NOREPLACE) when the
    kernel and libc have it, else an exists-check first (fine under the writer lock)."""
    global _libc
    if _libc is None:
        _libc = _load_libc()
    fn = getattr(_libc, "renameat2", None)
    if fn is not None:
        at_fdcwd = -100
        rc = fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = _errno()
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), str(src), None, str(dst))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    os.rename(src, dst)
