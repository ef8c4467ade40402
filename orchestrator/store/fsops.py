"""The store's filesystem operations: private directories, a removal that never leaves a
half-deleted directory under its real name, a durable tree, a rename that never replaces.

Everything here exists for durability (fsync of files *and* directories, so a rename survives a
power cut). The durable single-file write and the process identity are the kernel's
(kernel/atomic.py, kernel/owner.py).
"""

from __future__ import annotations

import errno
import os
import stat
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import ctypes

from ..kernel.atomic import fsync_dir


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


_LIBC: "ctypes.CDLL | Literal[False] | None" = None


_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range: Any = None


def start_file_writeback(fd: int) -> None:
    """Start writing a just-written file's data to disk, without waiting
    (sync_file_range(2) with SYNC_FILE_RANGE_WRITE), so that the commit's syncfs has little left.

    The kernel's own flusher starts only at 10 % of RAM dirty, so for most backups nothing
    reached the disk before the commit, which then waited for all of it. The crash guarantee
    does not rest on this call: it waits for nothing and reports nothing (it takes no write-back
    error from the commit's syncfs, which still makes everything durable before the rename).
    A background syncfs was tried first: it made the creation of small files wait for the
    journal (20,000 files of 1-4 KB: 5x slower on a shared disk). No-op where unavailable."""
    global _sync_file_range
    if _sync_file_range is None:
        try:
            import ctypes

            fn = _load_libc().sync_file_range
            fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
            _sync_file_range = fn
        except (OSError, AttributeError):
            _sync_file_range = False
    if _sync_file_range is not False:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


def fsync_tree(root: Path) -> None:
    """Make every regular file and directory below `root` durable (symlinks not followed):
    syncfs(2) of its filesystem on Linux (it reports write-back errors since Linux 5.8), else
    fsync of each file and directory."""
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
