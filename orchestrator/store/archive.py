"""Streaming tar in and out of sandboxes, treating every archive as hostile.

`extract_stream` reads the chunks of `container.get_archive(path)` with the strict streaming
reader of `tarstream.py`: one entry at a time, never the whole archive in memory, file bodies
hashed (SHA-256) and written straight from the received buffers. The policy is *record what a
sandbox holds, refuse only what is dangerous* (docs/reference/archive-policy.md):

* **refused** (listed in `result.rejected`, not written; the capture must not be committed):
  absolute paths, `..` components, NUL bytes, empty names, names going through a symlink,
  duplicate or conflicting entries, symlinks with an empty target, hard links whose target is
  not an earlier file of the same archive, sparse files and unknown entry types;
* **recorded and kept**: directories, regular files, and symlinks *whatever their target*
  (absolute or leaving the backup too: a Python venv's `bin/python -> /usr/bin/python3`). A
  link is stored as a link and never followed on the host: links are created only after the
  last entry, and every write walks from the root directory's fd with `O_NOFOLLOW`;
* **hard links** become separate regular files with the same bytes (what upstream's
  `tar --hard-dereference` does): the second name is a copy of the first, made on disk;
* **skipped and listed** (`result.skipped`, not a failure): FIFOs and device nodes. Docker
  itself leaves sockets out of its archives, so they never arrive.

Files are created `O_EXCL|O_NOFOLLOW`. Records keep the full mode bits of each entry (setuid,
setgid and sticky included, `0o7777`); on the host disk a staged file never keeps setuid/setgid
and is at least owner-readable/writable (`u+rw`), a directory `u+rwx`, so this process can
check and restore it. Ownership is never applied on the host. After its last write each file
is fstat'ed and its identity (device, inode, size, mtime, ctime) kept in `result.written`, so a
commit can prove the staged tree is the one that was hashed without reading it again
(`check_written`).

`pack_directory` is the reverse: a generator of 1 MiB tar blocks for `container.put_archive`,
which docker SDK 7 sends as a chunked request body without buffering it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import stat
import threading
from collections.abc import Callable, Container, Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import attrs

from . import fsops
from .errors import ArchiveError
from .records import DirRecord, FileRecord, LinkRecord, Rejected, short_path
from .tarstream import BLOCK, TarEntry, TarReader

__all__ = [
    "ArchiveResult", "FileIdentity", "HostLimits", "ProgressCallback", "check_written", "describe_entries", "extract_stream",
    "hash_stream", "pack_directory",
]  # fmt: skip

#: Called with (bytes so far, files so far).
ProgressCallback = Callable[[int, int], None]

_PACK_CHUNK = 1 << 20
_PROGRESS_EVERY = 4 << 20
_WRITEBACK_MIN = 64 << 10  # files this large start their write-back as soon as written (fsops.start_file_writeback)
_PROGRESS_FILES = 64  # with many small files, a report per 64 files (the first file always reported at once)


def _read_umask() -> int | None:
    """This process's umask, read without changing it (os.umask sets it, for every thread)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


_UMASK = _read_umask()


def _staged_mode(mode: int) -> int:
    """A staged file's mode on the host: the entry's permission bits, never setuid/setgid/sticky,
    always owner read/write (the records keep the full bits)."""
    return (mode & 0o777) | 0o600
_IMPLICIT_DIR_MODE = 0o755  # what Docker gives parent directories it creates on put_archive

#: (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns) of a staged file right after its last write.
FileIdentity = tuple[int, int, int, int, int]


@attrs.define
class ArchiveResult:
    files: list[FileRecord] = attrs.field(factory=list)
    dirs: list[DirRecord] = attrs.field(factory=list)
    symlinks: list[LinkRecord] = attrs.field(factory=list)
    rejected: list[Rejected] = attrs.field(factory=list)
    skipped: list[Rejected] = attrs.field(factory=list)  # FIFOs, device nodes: not backed up, not a failure
    written: dict[str, FileIdentity] = attrs.field(factory=dict)  # path -> identity on disk
    bytes: int = 0  # logical bytes of the files (a hole counts as the zeros it reads as)
    stored: int = 0  # bytes written to disk (holes left as holes: see `_SparseWriter`)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def merge(self, other: "ArchiveResult") -> "ArchiveResult":
        """Combine the results of several streams extracted into the same root."""
        self.files += other.files
        self.dirs += other.dirs
        self.symlinks += other.symlinks
        self.rejected += other.rejected
        self.skipped += other.skipped
        self.written.update(other.written)
        self.bytes += other.bytes
        self.stored += other.stored
        return self


def describe_entries(entries: Sequence[Rejected], limit: int = 3) -> str:
    """`a/x (absolute path), b (FIFO) and 2 more`: for one line of a report."""
    shown = ", ".join(f"{short_path(e.path)} ({e.reason})" for e in entries[:limit])
    more = len(entries) - limit
    return f"{shown} and {more} more" if more > 0 else shown


@attrs.frozen
class HostLimits:
    """What the host can name below the folders a capture is written to and committed in: a
    path must fit PATH_MAX (with its NUL) below the longer of the two (`prefix`, bytes), and each
    name NAME_MAX. A longer entry could be written (the extractor walks by directory fd) but never
    read back by path (`backups list`, `verify`, `restore`), so it is refused: docs/backups.md."""

    prefix: int
    path_max: int = 4096
    name_max: int = 255

    @classmethod
    def below(cls, *folders: Path) -> "HostLimits":
        first = Path(folders[0])
        try:
            path_max, name_max = os.pathconf(first, "PC_PATH_MAX"), os.pathconf(first, "PC_NAME_MAX")
        except (OSError, ValueError):
            path_max, name_max = 4096, 255
        return cls(prefix=max(len(os.fsencode(str(f))) for f in folders), path_max=path_max, name_max=name_max)

    def why_not(self, parts: Sequence[str]) -> str | None:
        """Why the entry `parts` (below the folders) cannot be stored, or None."""
        for part in parts:
            n = len(os.fsencode(part))
            if n > self.name_max:
                return f"a name of {n} bytes is too long for the backup folder on this host (at most {self.name_max})"
        total = self.prefix + sum(len(os.fsencode(p)) + 1 for p in parts)
        if total > self.path_max - 1:
            return (f"its path is too long for the backup folder on this host ({total} bytes there, "
                    f"at most {self.path_max - 1})")
        return None


class _Reject(Exception):
    pass


class _Skip(Exception):
    pass


_PREFETCH_DEPTH = 4  # batches read ahead: at most ~4 x 1 MiB in flight
_BATCH = 1 << 20  # Docker sends 32 KiB HTTP chunks: hand the parser ~1 MiB at a time


def _prefetch(chunks: Iterable[bytes], depth: int = _PREFETCH_DEPTH) -> Generator[bytes, None, None]:
    """Read `chunks` in a thread, a bounded few batches ahead, so the Docker engine keeps
    streaming while this thread hashes and writes (both release the GIL). Small chunks are
    joined into ~1 MiB batches (one queue hand-off per batch instead of per 32 KiB). Memory
    stays bounded by `depth` batches; an abandoned or failing consumer stops the reader."""
    q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            batch: list[bytes] = []
            size = 0
            for chunk in chunks:
                batch.append(chunk)
                size += len(chunk)
                if size >= _BATCH:
                    if not put(("chunk", batch[0] if len(batch) == 1 else b"".join(batch))):
                        return
                    batch, size = [], 0
            if batch and not put(("chunk", b"".join(batch))):
                return
            item: tuple[str, object] = ("end", None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            item = ("error", exc)
        put(item)

    reader = threading.Thread(target=pump, name="archive-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "chunk":
                yield value  # type: ignore[misc]
            elif kind == "error":
                raise value  # type: ignore[misc]
            else:
                return
    finally:
        stop.set()
        # A reader still in the middle of a batch stops at its next hand-off; only then may the
        # caller close the stream under it (the engine keeps the container's lock while it is open).
        reader.join(timeout=5)
        close = getattr(chunks, "close", None)
        if close is not None and not reader.is_alive():
            close()


def _split_name(name: str) -> tuple[str, ...]:
    """Validated relative path components of an archive member name (`_Reject` if hostile)."""
    if "\x00" in name:
        raise _Reject("NUL byte in name")
    if name.startswith("/"):
        raise _Reject("absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _Reject("'..' path component")
    return parts


@attrs.define
class _Extractor:
    dest: Path | None  # None: hash only, write nothing
    prefix: tuple[str, ...]
    only_under: str | None
    reserved: frozenset[str]
    on_progress: ProgressCallback | None
    skip: Callable[[str], bool] | None = None  # relative paths left out entirely (not written, not recorded)
    limits: HostLimits | None = None  # entries the host could not read back are refused
    on_stored: Callable[[int], None] | None = None  # bytes written to disk so far (for a space budget)
    result: ArchiveResult = attrs.field(factory=ArchiveResult)
    _root_fd: int | None = None
    _seen: set[tuple[str, ...]] = attrs.field(factory=set)
    _links: dict[tuple[str, ...], str] = attrs.field(factory=dict)
    _regular: dict[tuple[str, ...], FileRecord] = attrs.field(factory=dict)
    _dir_modes: dict[tuple[str, ...], int] = attrs.field(factory=dict)
    _cached_dir: tuple[tuple[str, ...], int] | None = None
    _files: int = 0
    _last_report: int = 0
    _last_files: int = -1

    # --- driving ------------------------------------------------------------------------------

    def run(self, chunks: Iterable[bytes]) -> ArchiveResult:
        if self.dest is not None:
            self._root_fd = os.open(self.dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        feed = _prefetch(chunks)
        try:
            reader = TarReader(feed)
            for entry in reader:
                self._entry(reader, entry)
            self._finish_links()
            self._finish_dirs()
        finally:
            feed.close()  # now, not when a traceback lets go of it: the read-ahead thread stops
            self._drop_cached_dir()
            if self._root_fd is not None:
                os.close(self._root_fd)
        self._progress(force=True)
        return self.result

    def _entry(self, reader: TarReader, e: TarEntry) -> None:
        shown = e.name
        try:
            parts = _split_name(e.name)
            if not parts:
                if e.kind == "dir":
                    return  # the archive's own root ("./"): nothing to write
                raise _Reject("empty name")
            if self.only_under is not None and parts[0] != self.only_under:
                raise _Reject(f"outside the requested path {self.only_under!r}")
            parts = self.prefix + parts
            shown = "/".join(parts)
            if self.skip is not None and self.skip(shown):
                return
            if len(parts) == 1 and parts[0] in self.reserved:
                raise _Reject("reserved name")
            if self.limits is not None:
                why = self.limits.why_not(parts)
                if why is not None:
                    raise _Reject(why)
            for i in range(1, len(parts)):
                if parts[:i] in self._links:
                    raise _Reject(f"path goes through the symlink {'/'.join(parts[:i])}")
            kind = e.kind
            if kind == "file":
                if e.sparse:
                    raise _Reject("sparse file (not supported)")
                self._file(parts, e, reader)
            elif kind == "dir":
                self._dir(parts, e)
            elif kind == "symlink":
                self._symlink(parts, e)
            elif kind == "hardlink":
                self._hardlink(parts, e)
            elif kind in ("chr", "blk"):
                raise _Skip("device node")
            elif kind == "fifo":
                raise _Skip("FIFO")
            else:
                raise _Reject(f"unsupported entry type {e.typeflag!r}")
        except _Reject as why:
            self.result.rejected.append(Rejected(path=shown, reason=str(why)))
        except _Skip as why:
            self.result.skipped.append(Rejected(path=shown, reason=str(why)))

    # --- entry kinds --------------------------------------------------------------------------

    def _claim(self, parts: tuple[str, ...]) -> None:
        if parts in self._seen or parts in self._dir_modes:
            raise _Reject("duplicate entry")
        self._seen.add(parts)

    def _dir(self, parts: tuple[str, ...], e: TarEntry) -> None:
        if parts in self._seen:
            raise _Reject("conflicts with an earlier entry")
        mode = e.mode
        if self._root_fd is not None:
            fd = self._open_dir(parts, create=True)
            os.close(fd)
        self._implicit_parents(parts[:-1])
        if parts not in self._dir_modes:
            self.result.dirs.append(DirRecord("/".join(parts), mode))
        else:
            self.result.dirs = [d for d in self.result.dirs if d.path != "/".join(parts)] + [DirRecord("/".join(parts), mode)]
        self._dir_modes[parts] = mode

    def _symlink(self, parts: tuple[str, ...], e: TarEntry) -> None:
        if "\x00" in e.linkname or not e.linkname:
            raise _Reject("empty or invalid symlink target")
        self._claim(parts)
        self._links[parts] = e.linkname  # created once the whole archive is known, never followed

    def _create(self, parts: tuple[str, ...], mode: int) -> int:
        """Create a file with its staged mode (`_staged_mode`): where the umask leaves it whole,
        `_seal` needs no fchmod (one syscall fewer per file). Below the 0700 staging root."""
        parent = self._parent_fd(parts[:-1])
        try:
            return os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                           _staged_mode(mode), dir_fd=parent)
        except FileExistsError:
            raise _Reject("conflicts with an existing entry") from None

    def _seal(self, path: str, fd: int, mode: int, mtime: float) -> None:
        """Last touches of a staged file, then its identity for `check_written`."""
        staged = _staged_mode(mode)
        if _UMASK is None or staged & _UMASK:
            os.fchmod(fd, staged)
        try:
            os.utime(fd, (mtime, mtime))
        except (OverflowError, OSError, ValueError):
            pass  # a nonsense mtime is not worth refusing the file for
        st = os.fstat(fd)
        self.result.written[path] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _file(self, parts: tuple[str, ...], e: TarEntry, reader: TarReader) -> None:
        self._claim(parts)
        digest = hashlib.sha256()
        path = "/".join(parts)
        fd = self._create(parts, e.mode) if self._root_fd is not None else None
        self._implicit_parents(parts[:-1])
        sparse = _SparseWriter(fd) if fd is not None else None
        try:
            for view in reader.body():
                digest.update(view)
                if sparse is not None:
                    self.result.stored += sparse.write(view)
                self.result.bytes += len(view)
                self._progress()
            if fd is not None:
                assert sparse is not None
                sparse.finish()
                if e.size >= _WRITEBACK_MIN:
                    fsops.start_file_writeback(fd)  # to disk while the stream goes on (small files: at the commit)
                self._seal(path, fd, e.mode, e.mtime)
        finally:
            if fd is not None:
                os.close(fd)
        self._files += 1
        rec = FileRecord(path, e.size, digest.hexdigest(), e.mode)
        self._regular[parts] = rec
        self.result.files.append(rec)
        self._progress()

    def _hardlink(self, parts: tuple[str, ...], e: TarEntry) -> None:
        """The second name of a hard-linked file: a separate copy of the first (same bytes)."""
        self._claim(parts)
        try:
            target = self.prefix + _split_name(e.linkname) if e.linkname else ()
        except _Reject:
            target = ()
        src = self._regular.get(target)
        if src is None:
            raise _Reject(f"hard link to {e.linkname!r}, which is not an earlier file of this archive")
        path = "/".join(parts)
        if self._root_fd is not None:
            out = self._create(parts, e.mode)
            try:
                sfd = self._open_file(target)
                try:
                    _copy_fd(sfd, out, src.size)
                finally:
                    os.close(sfd)
                self._seal(path, out, e.mode, e.mtime)
            finally:
                os.close(out)
        self._implicit_parents(parts[:-1])
        self.result.bytes += src.size
        self._files += 1
        rec = FileRecord(path, src.size, src.sha256, e.mode)
        self._regular[parts] = rec
        self.result.files.append(rec)
        self._progress()

    # --- filesystem ---------------------------------------------------------------------------

    def _implicit_parents(self, parts: tuple[str, ...]) -> None:
        if parts in self._dir_modes or not parts:
            return  # the usual case: a directory's files follow it (each of its parents is recorded)
        for i in range(1, len(parts) + 1):
            if parts[:i] not in self._dir_modes:
                self._dir_modes[parts[:i]] = _IMPLICIT_DIR_MODE
                self.result.dirs.append(DirRecord("/".join(parts[:i]), _IMPLICIT_DIR_MODE))

    def _parent_fd(self, parts: tuple[str, ...]) -> int:
        """The directory fd for consecutive files of one directory, opened once (tar archives
        list a directory's files together): one open per file instead of one per component.
        Only this extractor writes below the private staging root, so the fd stays valid."""
        if self._cached_dir is not None and self._cached_dir[0] == parts:
            return self._cached_dir[1]
        fd = self._open_dir(parts, create=True)
        self._drop_cached_dir()
        self._cached_dir = (parts, fd)
        return fd

    def _drop_cached_dir(self) -> None:
        if self._cached_dir is not None:
            os.close(self._cached_dir[1])
            self._cached_dir = None

    def _open_file(self, parts: tuple[str, ...]) -> int:
        parent = self._open_dir(parts[:-1], create=False)
        try:
            return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        finally:
            os.close(parent)

    def _open_dir(self, parts: tuple[str, ...], *, create: bool) -> int:
        """An fd for directory `parts` below the root, walked without following any symlink."""
        assert self._root_fd is not None
        fd = os.dup(self._root_fd)
        try:
            for i, comp in enumerate(parts):
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                try:
                    nxt = os.open(comp, flags, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(comp, 0o700, dir_fd=fd)
                    except FileExistsError:
                        pass
                    nxt = os.open(comp, flags, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise _Reject(f"path goes through a symlink or non-directory {'/'.join(parts[: i + 1])}") from None
                    raise
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _finish_links(self) -> None:
        """Create the symlinks, now that no later entry can be written through one."""
        for parts, target in self._links.items():
            if self._root_fd is not None:
                try:
                    parent = self._open_dir(parts[:-1], create=True)
                except _Reject as why:
                    self.result.rejected.append(Rejected("/".join(parts), str(why)))
                    continue
                try:
                    os.symlink(target, parts[-1], dir_fd=parent)
                except FileExistsError:
                    self.result.rejected.append(Rejected("/".join(parts), "conflicts with an existing entry"))
                    continue
                finally:
                    os.close(parent)
            self._implicit_parents(parts[:-1])
            self.result.symlinks.append(LinkRecord("/".join(parts), target))

    def _finish_dirs(self) -> None:
        """Apply directory modes last, so a read-only directory did not block its own contents."""
        if self._root_fd is None:
            return
        for parts, mode in sorted(self._dir_modes.items(), key=lambda kv: -len(kv[0])):
            try:
                fd = self._open_dir(parts, create=False)
            except (_Reject, FileNotFoundError):
                continue
            try:
                os.fchmod(fd, (mode & 0o777) | 0o700)
            finally:
                os.close(fd)

    def _progress(self, force: bool = False) -> None:
        if self.on_progress is None and self.on_stored is None:
            return
        files = self._files
        if (force or self.result.bytes - self._last_report >= _PROGRESS_EVERY
                or (files != self._last_files and (self._last_files <= 0 or files - self._last_files >= _PROGRESS_FILES))):
            self._last_report = self.result.bytes
            self._last_files = self._files
            if self.on_stored is not None:
                self.on_stored(self.result.stored)
            if self.on_progress is not None:
                self.on_progress(self.result.bytes, self._files)


_HOLE = 1 << 16  # zero runs this long (aligned in the file) become holes
_ZEROS = bytes(_HOLE)


class _SparseWriter:
    """Writes a file body as it streams in, leaving every block of zeros (aligned 64 KiB in
    the file, or the part of one a chunk holds) as a hole (a seek, nothing written): Docker's archive carries a sparse file's holes as zeros
    (2 GiB of them for a 2 GiB disk image holding 8 KiB). The check is a memcmp against
    zeros that stops at the first non-zero byte, so ordinary data costs next to nothing;
    the data is still hashed as it arrives, holes included (the file's logical content)."""

    __slots__ = ("fd", "pos", "end")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pos = 0  # logical offset of the next byte
        self.end = 0  # offset just past the last byte written (the file's size on disk so far)

    def write(self, view: memoryview) -> int:
        """Write `view` at the current offset; returns the bytes actually written."""
        written = 0
        n = len(view)
        i = 0
        while i < n:
            # up to the next 64 KiB boundary of the file, so a block is judged whole
            step = min(n - i, _HOLE - (self.pos + i) % _HOLE)
            block = view[i : i + step]
            if _ZEROS.startswith(block):  # skipped bytes read back as zeros: any zero block may be a hole
                i += step
                continue
            # a run of data blocks goes out in one write
            j = i + step
            while j < n:
                step2 = min(n - j, _HOLE)
                if _ZEROS.startswith(view[j : j + step2]):
                    break
                j += step2
            at = self.pos + i
            if at != self.end:
                os.lseek(self.fd, at, os.SEEK_SET)
            data = view[i:j]
            while data:
                data = data[os.write(self.fd, data) :]
            written += j - i
            self.end = self.pos + j
            i = j
        self.pos += n
        return written

    def finish(self) -> None:
        """A file that ends in a hole gets its full size."""
        if self.end != self.pos:
            os.ftruncate(self.fd, self.pos)
            self.end = self.pos


def _copy_fd(src: int, dst: int, size: int) -> None:
    """Copy `size` bytes between two files in the kernel (copy_file_range), else read/write."""
    left = size
    try:
        while left > 0:
            n = os.copy_file_range(src, dst, min(left, 1 << 30))
            if n == 0:
                break
            left -= n
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        os.lseek(src, size - left, os.SEEK_SET)
        os.lseek(dst, size - left, os.SEEK_SET)
        while left > 0:
            chunk = os.read(src, min(left, 1 << 20))
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(dst, view) :]
            left -= len(chunk)
    if left:
        raise ArchiveError("a hard-linked file changed size while it was copied")


def extract_stream(
    chunks: Iterable[bytes],
    dest: Path,
    *,
    prefix: str = "",
    only_under: str | None = None,
    reserved: Sequence[str] = ("rebuild-manifest.json",),
    on_progress: ProgressCallback | None = None,
    skip: Callable[[str], bool] | None = None,
    limits: HostLimits | None = None,
    on_stored: Callable[[int], None] | None = None,
) -> ArchiveResult:
    """Extract a tar stream into the existing directory `dest`, rejecting hostile entries.

    `prefix` places the entries below a sub-path of `dest` (e.g. `runtime` for a state file
    fetched as `state.db`); `only_under` refuses entries whose first component is not that name
    (Docker names them after the basename of the requested path); `skip(path)` true leaves an
    entry (and, for a directory, what is below it) out; `limits` refuses entries the host could
    not name below its backup folders; `on_stored(n)` hears the bytes written to disk so far
    (holes are not written: `_SparseWriter`). Raises ArchiveError only
    when the stream itself is unreadable; refused entries are listed in `result.rejected`,
    skipped special files in `result.skipped`.
    """
    return _Extractor(
        dest=Path(dest),
        prefix=_split_prefix(prefix),
        only_under=only_under,
        reserved=frozenset(reserved),
        on_progress=on_progress,
        skip=skip,
        limits=limits,
        on_stored=on_stored,
    ).run(chunks)


def hash_stream(
    chunks: Iterable[bytes],
    *,
    prefix: str = "",
    only_under: str | None = None,
    on_progress: ProgressCallback | None = None,
    skip: Callable[[str], bool] | None = None,
) -> ArchiveResult:
    """Same checks and records as `extract_stream`, writing nothing (to verify a restore)."""
    return _Extractor(
        dest=None,
        prefix=_split_prefix(prefix),
        only_under=only_under,
        reserved=frozenset(),
        on_progress=on_progress,
        skip=skip,
    ).run(chunks)


def _split_prefix(prefix: str) -> tuple[str, ...]:
    try:
        return _split_name(prefix)
    except _Reject as why:
        raise ValueError(f"invalid prefix {prefix!r}: {why}") from None


def check_written(root: Path, result: ArchiveResult) -> Rejected | None:
    """Prove that the tree below `root` is exactly what `result` recorded, without re-reading a
    byte: the same set of files, directories and symlinks (nothing extra, nothing missing),
    every symlink with its target, and every file still the very inode that was hashed as it
    was written, unchanged since (same device, inode, size, mtime and ctime: any later write,
    truncation, chmod or replacement changes one of them, and ctime cannot be set back by
    a process). Returns the first difference, or None."""
    root = Path(root)
    files = {f.path: f for f in result.files}
    links = {s.path: s.target for s in result.symlinks}
    dirs = {d.path for d in result.dirs}
    seen: set[str] = set()
    stack = [("", os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC))]
    try:
        while stack:
            rel_dir, dfd = stack.pop()
            try:
                with os.scandir(dfd) as it:
                    entries = list(it)
                for ent in entries:
                    rel = f"{rel_dir}{ent.name}"
                    if not rel_dir and ent.name == "rebuild-manifest.json":
                        continue
                    st = os.stat(ent.name, dir_fd=dfd, follow_symlinks=False)
                    seen.add(rel)
                    if stat.S_ISDIR(st.st_mode):
                        if rel not in dirs:
                            return Rejected(rel, "directory is not in the records")
                        stack.append((rel + "/", os.open(ent.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                                         | os.O_CLOEXEC, dir_fd=dfd)))
                    elif stat.S_ISLNK(st.st_mode):
                        if rel not in links:
                            return Rejected(rel, "symlink is not in the records")
                        if os.readlink(ent.name, dir_fd=dfd) != links[rel]:
                            return Rejected(rel, "symlink target changed")
                    elif stat.S_ISREG(st.st_mode):
                        rec = files.get(rel)
                        if rec is None:
                            return Rejected(rel, "file is not in the records")
                        ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                        if st.st_size != rec.size:
                            return Rejected(rel, f"size is {st.st_size}, recorded {rec.size}")
                        if result.written.get(rel) != ident:
                            return Rejected(rel, "changed or replaced after it was written and hashed")
                    else:
                        return Rejected(rel, "special file is not in the records")
            finally:
                os.close(dfd)
    finally:
        for _, fd in stack:
            os.close(fd)
    for path in (*files, *links, *dirs):
        if path not in seen:
            return Rejected(path, "recorded but missing")
    return None


# --- packing ----------------------------------------------------------------------------------


def pack_directory(
    src: Path,
    names: Sequence[str],
    *,
    modes: Mapping[str, int] | None = None,
    owner: tuple[int, int] = (0, 0),
    under: str = "",
    on_progress: ProgressCallback | None = None,
    empty: Container[str] = (),
) -> Iterator[bytearray]:
    """Yield an uncompressed tar of `names` (paths relative to `src`, e.g. `agents` or
    `runtime/state.db`) in blocks of 1 MiB (headers and file data packed together, so the
    HTTP body goes out in large writes; memory stays at one block).

    Parent directories of a nested name are included as bare directory entries. `modes`
    (relative path -> mode bits, setuid/setgid/sticky included, e.g. from the manifest)
    overrides the on-disk bits; every entry is owned by `owner` (uid, gid) so the sandbox user
    can use the restored files. Symlinks are packed as symlinks and never followed. `under`
    (e.g. `sandbox/.openclaw`) is put before every name in the archive, with no entries of its
    own, for an archive extracted at `/` (see restore.py). A file named in `empty` is packed
    with no content (a sparse file whose data extents go separately: container_write.py).
    """
    lead = "/".join(_split_prefix(under))
    lead = f"{lead}/" if lead else ""
    modes = modes or {}
    emitted: set[str] = set()
    done = [0, 0]  # bytes, files
    out = bytearray()

    def header(rel: str, st: os.stat_result, *, kind: bytes, size: int = 0, link: str = "") -> bytes:
        return _ustar_header(lead + rel, kind, modes.get(rel, stat.S_IMODE(st.st_mode)) & 0o7777, owner,
                             int(st.st_mtime), size, link)

    def entry(rel: str) -> Iterator[bytearray]:
        nonlocal out
        path = src / rel
        st = os.lstat(path)
        emitted.add(rel)
        if stat.S_ISDIR(st.st_mode):
            out += header(rel, st, kind=b"5")
            for child in sorted(os.listdir(path)):
                yield from entry(f"{rel}/{child}")
        elif stat.S_ISLNK(st.st_mode):
            out += header(rel, st, kind=b"2", link=os.readlink(path))
        elif stat.S_ISREG(st.st_mode) and rel in empty:
            out += header(rel, st, kind=b"0", size=0)
            done[0] += st.st_size
            done[1] += 1
            if on_progress is not None:
                on_progress(done[0], done[1])
        elif stat.S_ISREG(st.st_mode):
            out += header(rel, st, kind=b"0", size=st.st_size)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                left = st.st_size
                while left > 0:
                    room = _PACK_CHUNK - len(out)
                    if room <= 0:
                        yield out
                        out = bytearray()
                        continue
                    chunk = os.read(fd, min(room, left))
                    if not chunk:
                        raise ArchiveError(f"{path} shrank while being packed")
                    out += chunk
                    left -= len(chunk)
            finally:
                os.close(fd)
            out += b"\0" * (-st.st_size % BLOCK)
            done[0] += st.st_size
            done[1] += 1
            if on_progress is not None:
                on_progress(done[0], done[1])
        else:
            raise ArchiveError(f"cannot pack {path}: not a regular file, directory or symlink")
        if len(out) >= _PACK_CHUNK:
            yield out
            out = bytearray()

    for name in names:
        parts = _split_prefix(name)
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in emitted:
                emitted.add(parent)
                out += header(parent, os.lstat(src / parent), kind=b"5")
        yield from entry("/".join(parts))
    out += b"\0" * (2 * BLOCK)
    yield out


def pack_ranges(items: Sequence[tuple[str, Path, int, int]], *, owner: tuple[int, int] = (0, 0)) -> Iterator[bytes]:
    """A tar of byte ranges of files: each item (archive name, file, offset, length) becomes
    one regular file `name` holding those bytes (for a sparse file's data extents)."""
    for name, path, offset, length in items:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            yield _ustar_header(name, b"0", 0o600, owner, 0, length, "")
            left, at = length, offset
            while left > 0:
                chunk = os.pread(fd, min(left, _PACK_CHUNK), at)
                if not chunk:
                    raise ArchiveError(f"{path} shrank while being packed")
                yield chunk
                left -= len(chunk)
                at += len(chunk)
        finally:
            os.close(fd)
        yield b"\0" * (-length % BLOCK)
    yield b"\0" * (2 * BLOCK)


def _ustar_header(name: str, kind: bytes, mode: int, owner: tuple[int, int], mtime: int, size: int,
                  link: str) -> bytes:
    """One POSIX header (with a PAX header before it when a name, target or number does not fit)."""
    raw_name = os.fsencode(name)
    raw_link = os.fsencode(link)
    pax: dict[bytes, bytes] = {}
    if len(raw_name) > 100:
        pax[b"path"] = raw_name
    if len(raw_link) > 100:
        pax[b"linkpath"] = raw_link
    if size >= 8**11:
        pax[b"size"] = str(size).encode()
    if not 0 <= mtime < 8**11:
        pax[b"mtime"] = str(mtime).encode()
        mtime = 0
    uid, gid = owner
    if not 0 <= uid < 8**7:
        pax[b"uid"], uid = str(uid).encode(), 0
    if not 0 <= gid < 8**7:
        pax[b"gid"], gid = str(gid).encode(), 0
    block = _header_block(raw_name[:100], kind, mode, uid, gid, min(size, 8**11 - 1), mtime, raw_link[:100])
    if not pax:
        return block
    body = b"".join(_pax_record(k, v) for k, v in pax.items())
    ext = _header_block(b"././@PaxHeader", b"x", 0o644, 0, 0, len(body), 0, b"")
    return ext + body + b"\0" * (-len(body) % BLOCK) + block


def _pax_record(key: bytes, value: bytes) -> bytes:
    rest = len(key) + len(value) + 3  # " ", "=", "\n"
    n = rest + len(str(rest))
    if len(str(n)) != len(str(rest)):
        n += 1
    return b"%d %s=%s\n" % (n, key, value)


def _header_block(name: bytes, kind: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
                  link: bytes) -> bytes:
    hdr = bytearray(BLOCK)
    hdr[0 : len(name)] = name
    hdr[100:108] = b"%07o\0" % mode
    hdr[108:116] = b"%07o\0" % uid
    hdr[116:124] = b"%07o\0" % gid
    hdr[124:136] = b"%011o\0" % size
    hdr[136:148] = b"%011o\0" % mtime
    hdr[148:156] = b" " * 8
    hdr[156:157] = kind
    hdr[157 : 157 + len(link)] = link
    hdr[257:265] = b"ustar\x0000"
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    return bytes(hdr)
