"""Streaming tar in and out of sandboxes, treating every archive as hostile.

`extract_stream` reads the chunks of `container.get_archive(path)` through `tarfile`'s
streaming mode (`r|`): one entry at a time, never the whole archive in memory. Every entry is
checked before anything is written; refused entries are reported, not written:

* absolute paths, `..` components, NUL bytes, names going through a symlink;
* symlinks whose target is absolute or resolves outside the backup root (also through chains of
  links; symlinks are created only after the last entry, once the full set is known);
* **all hard links** (a backup must be a plain tree whose every file can be hashed on its own;
  NemoClaw's own audit rejects them too);
* device nodes, FIFOs, and any other or unknown entry type (tar cannot carry sockets).

Writing never follows a symlink: each path is walked from the root directory's fd with
`O_NOFOLLOW`, and files are created `O_EXCL|O_NOFOLLOW`. Size and SHA-256 of each file are
computed in the same pass that writes it. Permission bits are kept (setuid/setgid/sticky never;
ownership never); on disk a file is at least owner-readable/writable (`u+rw`) and a directory
`u+rwx`, so this process can verify and restore it, while the records keep the original bits.

`pack_directory` is the reverse: a generator of tar bytes for `container.put_archive`, which
docker SDK 7 sends as a chunked request body without buffering it.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import queue
import stat
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import attrs

from .errors import ArchiveError
from .records import DirRecord, FileRecord, LinkRecord, Rejected

__all__ = ["ArchiveResult", "ProgressCallback", "extract_stream", "hash_stream", "pack_directory"]

#: Called with (bytes so far, files so far).
ProgressCallback = Callable[[int, int], None]

_COPY_CHUNK = 1 << 20
_PROGRESS_EVERY = 4 << 20
_MAX_LINK_HOPS = 40
_IMPLICIT_DIR_MODE = 0o755  # what Docker gives parent directories it creates on put_archive


@attrs.define
class ArchiveResult:
    files: list[FileRecord] = attrs.field(factory=list)
    dirs: list[DirRecord] = attrs.field(factory=list)
    symlinks: list[LinkRecord] = attrs.field(factory=list)
    rejected: list[Rejected] = attrs.field(factory=list)
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.rejected

    def merge(self, other: "ArchiveResult") -> "ArchiveResult":
        """Combine the results of several streams extracted into the same root."""
        self.files += other.files
        self.dirs += other.dirs
        self.symlinks += other.symlinks
        self.rejected += other.rejected
        self.bytes += other.bytes
        return self


class _Reject(Exception):
    pass


_PREFETCH_DEPTH = 4  # chunks of Docker's 2 MiB read ahead: at most ~8 MiB in flight


def _prefetch(chunks: Iterable[bytes], depth: int = _PREFETCH_DEPTH) -> Iterator[bytes]:
    """Read `chunks` in a thread, a bounded few ahead, so the Docker engine keeps streaming
    while this thread hashes and writes (both release the GIL). Memory stays bounded by
    `depth` chunks; an abandoned or failing consumer stops the reader."""
    q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        q.put(("chunk", chunk), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item: tuple[str, object] = ("end", None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            item = ("error", exc)
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

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
        close = getattr(chunks, "close", None)
        if close is not None and not reader.is_alive():
            close()


class _ChunkReader(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks, holding at most one chunk."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                chunk = next(self._it)
            except StopIteration:
                return 0
            self._buf = memoryview(chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


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


def _link_escape(link: tuple[str, ...], target: str, lookup: Callable[[tuple[str, ...]], str | None]) -> str | None:
    """Why `link -> target` leaves the backup root (following other links via `lookup`), or None."""
    if not target or "\x00" in target:
        return "empty or invalid symlink target"
    if target.startswith("/"):
        return f"symlink target is absolute ({target})"
    parts = list(link[:-1])
    todo = target.split("/")
    hops = 0
    while todo:
        comp = todo.pop(0)
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                return f"symlink target resolves outside the backup ({target})"
            parts.pop()
            continue
        parts.append(comp)
        nxt = lookup(tuple(parts))
        if nxt is not None:
            hops += 1
            if hops > _MAX_LINK_HOPS:
                return "symlink loop"
            if not nxt or nxt.startswith("/"):
                return f"symlink target resolves outside the backup ({target} via {'/'.join(parts)} -> {nxt})"
            parts.pop()
            todo = nxt.split("/") + todo
    return None


@attrs.define
class _Extractor:
    dest: Path | None  # None: hash only, write nothing
    prefix: tuple[str, ...]
    only_under: str | None
    reserved: frozenset[str]
    on_progress: ProgressCallback | None
    skip: Callable[[str], bool] | None = None  # relative paths left out entirely (not written, not recorded)
    result: ArchiveResult = attrs.field(factory=ArchiveResult)
    _root_fd: int | None = None
    _seen: set[tuple[str, ...]] = attrs.field(factory=set)
    _links: dict[tuple[str, ...], str] = attrs.field(factory=dict)
    _dir_modes: dict[tuple[str, ...], int] = attrs.field(factory=dict)
    _cached_dir: tuple[tuple[str, ...], int] | None = None
    _files: int = 0
    _last_report: int = 0
    _last_files: int = -1

    # --- driving ------------------------------------------------------------------------------

    def run(self, chunks: Iterable[bytes]) -> ArchiveResult:
        if self.dest is not None:
            self._root_fd = os.open(self.dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            try:
                tar = tarfile.open(fileobj=_ChunkReader(_prefetch(chunks)), mode="r|", bufsize=64 * 1024)
            except tarfile.ReadError as exc:
                raise ArchiveError(f"not a readable tar stream: {exc}") from exc
            with tar:
                try:
                    while (member := tar.next()) is not None:
                        tar.members.clear()  # streaming: keep no per-entry history
                        self._entry(tar, member)
                except (tarfile.ReadError, tarfile.HeaderError, EOFError) as exc:
                    raise ArchiveError(f"corrupt or truncated tar stream: {exc}") from exc
            self._finish_links()
            self._finish_dirs()
        finally:
            self._drop_cached_dir()
            if self._root_fd is not None:
                os.close(self._root_fd)
        self._progress(force=True)
        return self.result

    def _entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        shown = m.name
        try:
            parts = _split_name(m.name)
            if not parts:
                return  # the archive's own root ("./"): nothing to write
            if self.only_under is not None and parts[0] != self.only_under:
                raise _Reject(f"outside the requested path {self.only_under!r}")
            parts = self.prefix + parts
            shown = "/".join(parts)
            if self.skip is not None and self.skip(shown):
                return
            if len(parts) == 1 and parts[0] in self.reserved:
                raise _Reject("reserved name")
            for i in range(1, len(parts)):
                if parts[:i] in self._links:
                    raise _Reject(f"path goes through the symlink {'/'.join(parts[:i])}")
            if m.islnk():
                raise _Reject("hard link (not accepted in backups)")
            if m.ischr() or m.isblk():
                raise _Reject("device node")
            if m.isfifo():
                raise _Reject("FIFO")
            if m.isdir():
                self._dir(parts, m)
            elif m.issym():
                self._symlink(parts, m)
            elif m.isreg():
                self._file(parts, m, tar)
            else:
                raise _Reject(f"unsupported entry type {m.type!r}")
        except _Reject as why:
            self.result.rejected.append(Rejected(path=shown, reason=str(why)))

    # --- entry kinds --------------------------------------------------------------------------

    def _claim(self, parts: tuple[str, ...]) -> None:
        if parts in self._seen or parts in self._dir_modes:
            raise _Reject("duplicate entry")
        self._seen.add(parts)

    def _dir(self, parts: tuple[str, ...], m: tarfile.TarInfo) -> None:
        if parts in self._seen:
            raise _Reject("conflicts with an earlier entry")
        mode = m.mode & 0o777
        if self._root_fd is not None:
            fd = self._open_dir(parts, create=True)
            os.close(fd)
        self._implicit_parents(parts[:-1])
        if parts not in self._dir_modes:
            self.result.dirs.append(DirRecord("/".join(parts), mode))
        else:
            self.result.dirs = [d for d in self.result.dirs if d.path != "/".join(parts)] + [DirRecord("/".join(parts), mode)]
        self._dir_modes[parts] = mode

    def _symlink(self, parts: tuple[str, ...], m: tarfile.TarInfo) -> None:
        if "\x00" in m.linkname or not m.linkname:
            raise _Reject("empty or invalid symlink target")
        if m.linkname.startswith("/"):
            raise _Reject(f"symlink target is absolute ({m.linkname})")
        self._claim(parts)
        self._links[parts] = m.linkname  # checked and created once the whole archive is known

    def _file(self, parts: tuple[str, ...], m: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        self._claim(parts)
        src = tar.extractfile(m)
        assert src is not None
        digest = hashlib.sha256()
        size = 0
        fd: int | None = None
        if self._root_fd is not None:
            parent = self._parent_fd(parts[:-1])
            try:
                fd = os.open(
                    parts[-1],
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                    dir_fd=parent,
                )
            except FileExistsError:
                raise _Reject("conflicts with an existing entry") from None
        self._implicit_parents(parts[:-1])
        try:
            while chunk := src.read(_COPY_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                self.result.bytes += len(chunk)
                if fd is not None:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                self._progress()
            if fd is not None:
                os.fchmod(fd, (m.mode & 0o777) | 0o600)
                try:
                    os.utime(fd, (m.mtime, m.mtime))
                except (OverflowError, OSError, ValueError):
                    pass  # a nonsense mtime is not worth refusing the file for
        finally:
            if fd is not None:
                os.close(fd)
        self._files += 1
        self.result.files.append(FileRecord("/".join(parts), size, digest.hexdigest(), m.mode & 0o777))
        self._progress()

    # --- filesystem ---------------------------------------------------------------------------

    def _implicit_parents(self, parts: tuple[str, ...]) -> None:
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

    def _lookup_link(self, parts: tuple[str, ...]) -> str | None:
        if parts in self._links:
            return self._links[parts]
        if self.dest is None:
            return None
        p = self.dest.joinpath(*parts)
        try:
            return os.readlink(p) if p.is_symlink() else None
        except OSError:
            return None

    def _finish_links(self) -> None:
        """Check every symlink against the complete tree, then create the ones that stay inside."""
        bad: dict[tuple[str, ...], str] = {}
        for parts, target in self._links.items():
            why = _link_escape(parts, target, self._lookup_link)
            if why is not None:
                bad[parts] = why
        for parts, why in bad.items():
            del self._links[parts]
            self.result.rejected.append(Rejected("/".join(parts), why))
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
                os.fchmod(fd, mode | 0o700)
            finally:
                os.close(fd)

    def _progress(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        if force or self._files != self._last_files or self.result.bytes - self._last_report >= _PROGRESS_EVERY:
            self._last_report = self.result.bytes
            self._last_files = self._files
            self.on_progress(self.result.bytes, self._files)


def extract_stream(
    chunks: Iterable[bytes],
    dest: Path,
    *,
    prefix: str = "",
    only_under: str | None = None,
    reserved: Sequence[str] = ("rebuild-manifest.json",),
    on_progress: ProgressCallback | None = None,
    skip: Callable[[str], bool] | None = None,
) -> ArchiveResult:
    """Extract a tar stream into the existing directory `dest`, rejecting hostile entries.

    `prefix` places the entries below a sub-path of `dest` (e.g. `runtime` for a state file
    fetched as `state.db`); `only_under` refuses entries whose first component is not that name
    (Docker names them after the basename of the requested path); `skip(path)` true leaves an
    entry (and, for a directory, what is below it) out. Raises ArchiveError only
    when the stream itself is unreadable; refused entries are listed in `result.rejected`.
    """
    return _Extractor(
        dest=Path(dest),
        prefix=_split_prefix(prefix),
        only_under=only_under,
        reserved=frozenset(reserved),
        on_progress=on_progress,
        skip=skip,
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


# --- packing ----------------------------------------------------------------------------------


def pack_directory(
    src: Path,
    names: Sequence[str],
    *,
    modes: Mapping[str, int] | None = None,
    owner: tuple[int, int] = (0, 0),
    on_progress: ProgressCallback | None = None,
) -> Iterator[bytes]:
    """Yield an uncompressed tar of `names` (paths relative to `src`, e.g. `agents` or
    `runtime/state.db`), one header or file chunk at a time (memory stays at one chunk).

    Parent directories of a nested name are included as bare directory entries. `modes`
    (relative path -> permission bits, e.g. from the manifest) overrides the on-disk bits;
    every entry is owned by `owner` (uid, gid) so the sandbox user can use the restored files.
    Symlinks are packed as symlinks and never followed.
    """
    modes = modes or {}
    emitted: set[str] = set()
    done = [0, 0]  # bytes, files

    def header(rel: str, st: os.stat_result, *, kind: bytes, size: int = 0, link: str = "") -> bytes:
        info = tarfile.TarInfo(rel)
        info.type = kind
        info.mode = modes.get(rel, stat.S_IMODE(st.st_mode)) & 0o777
        info.uid, info.gid = owner
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)
        info.size = size
        info.linkname = link
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")

    def entry(rel: str) -> Iterator[bytes]:
        path = src / rel
        st = os.lstat(path)
        emitted.add(rel)
        if stat.S_ISDIR(st.st_mode):
            yield header(rel, st, kind=tarfile.DIRTYPE)
            for child in sorted(os.listdir(path)):
                yield from entry(f"{rel}/{child}")
        elif stat.S_ISLNK(st.st_mode):
            yield header(rel, st, kind=tarfile.SYMTYPE, link=os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            yield header(rel, st, kind=tarfile.REGTYPE, size=st.st_size)
            yield from _file_blocks(path, st.st_size)
            done[0] += st.st_size
            done[1] += 1
            if on_progress is not None:
                on_progress(done[0], done[1])
        else:
            raise ArchiveError(f"cannot pack {path}: not a regular file, directory or symlink")

    for name in names:
        parts = _split_prefix(name)
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in emitted:
                emitted.add(parent)
                yield header(parent, os.lstat(src / parent), kind=tarfile.DIRTYPE)
        yield from entry("/".join(parts))
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _file_blocks(path: Path, size: int) -> Iterator[bytes]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        left = size
        while left > 0:
            chunk = os.read(fd, min(_COPY_CHUNK, left))
            if not chunk:
                raise ArchiveError(f"{path} shrank while being packed")
            left -= len(chunk)
            yield chunk
    finally:
        os.close(fd)
    pad = -size % tarfile.BLOCKSIZE
    if pad:
        yield b"\0" * pad
