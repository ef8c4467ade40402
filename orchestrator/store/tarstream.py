"""A strict streaming tar reader over the chunks of an HTTP body (Docker's `get_archive`).

Built for one job: read an uncompressed tar from an iterator of byte chunks, one pass, without
copying file bodies. Headers are parsed from the received buffer (a 512-byte header that
straddles two chunks is the only thing ever assembled); a file body is handed out as
`memoryview` slices of the received chunks, to be hashed and written as they are.

Formats: POSIX ustar, PAX extended headers (`x`, and global `g`: path, linkpath, size, mtime,
uid, gid; other keys are read and ignored) and GNU long names (`L`, `K`), which is what Go's
`archive/tar` (Docker) and Python's `tarfile` write. Anything damaged is an `ArchiveError`,
never a best guess: a truncated header or body, a missing end-of-archive marker, a bad header
checksum, a missing ustar magic, a numeric field that is not octal / base-256, a negative or
oversize size, a PAX record whose length is wrong, an extended header not followed by an entry.
The reader does not judge names: validating paths is the caller's job (see `archive.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .errors import ArchiveError

__all__ = ["BLOCK", "TarEntry", "TarReader"]

BLOCK = 512
MAX_SIZE = 1 << 43  # 8 TiB: larger is a damaged header, not a sandbox's file
MAX_META = 1 << 20  # longest PAX header / GNU long name body accepted

_KINDS = {
    b"0": "file", b"\0": "file", b"7": "file",
    b"1": "hardlink", b"2": "symlink", b"3": "chr", b"4": "blk", b"5": "dir", b"6": "fifo",
}  # fmt: skip
_NO_BODY = frozenset(("hardlink", "symlink", "chr", "blk", "dir", "fifo"))
_USTAR = b"ustar\x0000"
_GNU = b"ustar  \x00"
_OCTAL = frozenset(b"01234567")


class TarEntry:
    """One archive member, extended headers applied. `mode` has the permission, setuid, setgid
    and sticky bits (0o7777); `kind` is file, dir, symlink, hardlink, chr, blk, fifo or other."""

    __slots__ = ("name", "kind", "typeflag", "mode", "uid", "gid", "size", "mtime", "linkname", "sparse")

    def __init__(self, name: str, kind: str, typeflag: bytes, mode: int, uid: int, gid: int, size: int,
                 mtime: float, linkname: str, sparse: bool = False) -> None:
        self.name, self.kind, self.typeflag, self.mode = name, kind, typeflag, mode
        self.uid, self.gid, self.size, self.mtime, self.linkname, self.sparse = uid, gid, size, mtime, linkname, sparse

    def __repr__(self) -> str:
        return f"TarEntry({self.name!r}, {self.kind}, size={self.size})"


class TarReader:
    """Iterate over entries; while an entry is current, `body()` yields its data as memoryviews
    (each valid until the next call). Unread body bytes are skipped by the next iteration."""

    def __init__(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        self._it = iter(chunks)
        self._buf = memoryview(b"")
        self._pos = 0
        self._left = 0  # body bytes of the current entry not yet handed out
        self._pad = 0  # zero padding after the current body
        self.offset = 0  # bytes consumed from the stream (for messages)
        self._global: dict[str, bytes] = {}

    # --- buffer ------------------------------------------------------------------------------

    def _fill(self) -> bool:
        while True:
            try:
                chunk = next(self._it)
            except StopIteration:
                return False
            if chunk:
                self._buf = chunk if isinstance(chunk, memoryview) else memoryview(chunk)
                self._pos = 0
                return True

    def _take(self, n: int, what: str) -> memoryview | bytes:
        """Exactly `n` bytes: a slice of the current chunk when it holds them, else assembled."""
        avail = len(self._buf) - self._pos
        if avail >= n:
            view = self._buf[self._pos : self._pos + n]
            self._pos += n
            self.offset += n
            return view
        parts = bytearray(self._buf[self._pos :])
        self._pos = len(self._buf)
        while len(parts) < n:
            if not self._fill():
                raise ArchiveError(f"tar stream truncated in {what} at byte {self.offset + len(parts)}")
            want = n - len(parts)
            piece = self._buf[: want]
            parts += piece
            self._pos = len(piece)
        self.offset += n
        return bytes(parts)

    def _skip(self, n: int, what: str) -> None:
        while n:
            avail = len(self._buf) - self._pos
            if not avail:
                if not self._fill():
                    raise ArchiveError(f"tar stream truncated in {what} at byte {self.offset}")
                continue
            step = min(avail, n)
            self._pos += step
            self.offset += step
            n -= step

    def body(self) -> Iterator[memoryview]:
        """The current entry's data, in slices of the received chunks (never copied)."""
        while self._left:
            avail = len(self._buf) - self._pos
            if not avail:
                if not self._fill():
                    raise ArchiveError(f"tar stream truncated in a file body at byte {self.offset}")
                continue
            step = min(avail, self._left)
            view = self._buf[self._pos : self._pos + step]
            self._pos += step
            self.offset += step
            self._left -= step
            yield view

    def _finish_entry(self) -> None:
        if self._left:
            self._skip(self._left, "a file body")
            self._left = 0
        if self._pad:
            self._skip(self._pad, "the padding of a file body")
            self._pad = 0

    # --- entries -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[TarEntry]:
        pax: dict[str, bytes] = {}
        long_name: str | None = None
        long_link: str | None = None
        pending = False
        while True:
            self._finish_entry()
            at = self.offset
            if len(self._buf) == self._pos and not self._fill():
                if at == 0:
                    raise ArchiveError("empty tar stream")
                raise ArchiveError(f"tar stream truncated at byte {at}: no end-of-archive marker")
            hdr = bytes(self._take(BLOCK, "a header"))
            if hdr.count(0) == BLOCK:
                if pending:
                    raise ArchiveError(f"tar stream ends after an extended header (byte {at})")
                return
            _check_header(hdr, at)
            typeflag = hdr[156:157]
            size = _number(hdr[124:136], "size", at)
            if size < 0 or size > MAX_SIZE:
                raise ArchiveError(f"tar header at byte {at} has an invalid size {size}")
            if typeflag in (b"x", b"g", b"L", b"K"):
                if size > MAX_META:
                    raise ArchiveError(f"tar extended header at byte {at} is too large ({size} bytes)")
                data = bytes(self._take(size, "an extended header"))
                self._skip(-size % BLOCK, "an extended header")
                if typeflag == b"x":
                    pax.update(_parse_pax(data, at))
                elif typeflag == b"g":
                    self._global.update(_parse_pax(data, at))
                elif typeflag == b"L":
                    long_name = _cstr(data)
                else:
                    long_link = _cstr(data)
                pending = typeflag != b"g"
                continue
            entry = self._entry(hdr, typeflag, size, {**self._global, **pax}, long_name, long_link, at)
            pax, long_name, long_link, pending = {}, None, None, False
            self._left = 0 if entry.kind in _NO_BODY else entry.size
            self._pad = -self._left % BLOCK
            yield entry

    def _entry(self, hdr: bytes, typeflag: bytes, size: int, pax: dict[str, bytes], long_name: str | None,
               long_link: str | None, at: int) -> TarEntry:
        name = _cstr(hdr[0:100])
        if hdr[257:265] == _USTAR:
            prefix = _cstr(hdr[345:500])
            if prefix:
                name = f"{prefix}/{name}"
        if long_name is not None:
            name = long_name
        linkname = long_link if long_link is not None else _cstr(hdr[157:257])
        mode = _number(hdr[100:108], "mode", at)
        uid = _number(hdr[108:116], "uid", at)
        gid = _number(hdr[116:124], "gid", at)
        mtime: float = _number(hdr[136:148], "mtime", at, signed=True)
        if mode < 0 or uid < 0 or gid < 0:
            raise ArchiveError(f"tar header at byte {at} has a negative mode, uid or gid")
        sparse = False
        for key, value in pax.items():
            if key == "path":
                name = _text(value)
            elif key == "linkpath":
                linkname = _text(value)
            elif key == "size":
                size = _pax_int(value, key, at)
                if size > MAX_SIZE:
                    raise ArchiveError(f"tar PAX header at byte {at} has an invalid size {size}")
            elif key in ("uid", "gid"):
                if key == "uid":
                    uid = _pax_int(value, key, at)
                else:
                    gid = _pax_int(value, key, at)
            elif key == "mtime":
                mtime = _pax_time(value, at)
            elif key.startswith("GNU.sparse."):
                sparse = True
        kind = _KINDS.get(typeflag, "other")
        if typeflag == b"\0" and name.endswith("/"):
            kind = "dir"  # old tar convention, as tarfile reads it
        return TarEntry(name, kind, typeflag, mode & 0o7777, uid, gid, size, mtime, linkname, sparse)


def _check_header(hdr: bytes, at: int) -> None:
    magic = hdr[257:265]
    if magic != _USTAR and magic != _GNU and hdr[257:263] != b"ustar\x00":
        raise ArchiveError(f"not a tar stream (no ustar header at byte {at})")
    want = _number(hdr[148:156], "checksum", at)
    unsigned = sum(hdr) - sum(hdr[148:156]) + 8 * 32
    if want != unsigned:
        signed = unsigned - 256 * sum(1 for b in hdr[:148] + hdr[156:] if b > 127)
        if want != signed:
            raise ArchiveError(f"tar header at byte {at} has a bad checksum")


def _number(field: bytes, what: str, at: int, *, signed: bool = False) -> int:
    """An octal ASCII number (NUL/space terminated) or GNU base-256 (high bit of byte 0)."""
    if field[-1] == 0:  # the usual field: digits and one NUL (bytes.isdigit: no sign, space or `_`)
        digits = field[:-1]
        if digits.isdigit():
            try:
                return int(digits, 8)
            except ValueError:  # an 8 or a 9: the full check below says what is wrong
                pass
    first = field[0]
    if first & 0x80:
        if first == 0x80:
            return int.from_bytes(field[1:], "big")
        if first == 0xFF and signed:
            return int.from_bytes(field, "big", signed=True)
        raise ArchiveError(f"tar header at byte {at} has a garbled {what} field")
    end = field.find(b"\0")
    digits = (field if end < 0 else field[:end]).strip(b" ")
    rest = b"" if end < 0 else field[end:]
    if rest.strip(b"\0 ") or not _OCTAL.issuperset(digits):
        raise ArchiveError(f"tar header at byte {at} has a garbled {what} field")
    return int(digits, 8) if digits else 0


def _parse_pax(data: bytes, at: int) -> dict[str, bytes]:
    """PAX records `<len> <key>=<value>\\n`, where <len> counts the whole record."""
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        sp = data.find(b" ", pos, pos + 21)
        digits = data[pos:sp] if sp > pos else b""
        if not digits.isdigit():
            raise ArchiveError(f"tar PAX header at byte {at} has a record with a bad length")
        end = pos + int(digits)
        if end <= sp + 1 or end > len(data) or data[end - 1] != 0x0A:
            raise ArchiveError(f"tar PAX header at byte {at} has a record with a bad length")
        record = data[sp + 1 : end - 1]
        eq = record.find(b"=")
        if eq <= 0:
            raise ArchiveError(f"tar PAX header at byte {at} has a record without a key")
        try:
            key = record[:eq].decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveError(f"tar PAX header at byte {at} has an undecodable key") from None
        out[key] = record[eq + 1 :]
        pos = end
    return out


def _pax_int(value: bytes, key: str, at: int) -> int:
    if not value.isdigit() or len(value) > 20:
        raise ArchiveError(f"tar PAX header at byte {at} has an invalid {key} {value[:40]!r}")
    return int(value)


def _pax_time(value: bytes, at: int) -> float:
    whole, _, frac = value.lstrip(b"-").partition(b".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(value) > 40:
        raise ArchiveError(f"tar PAX header at byte {at} has an invalid mtime {value[:40]!r}")
    return float(value)


def _cstr(field: bytes) -> str:
    end = field.find(b"\0")
    return _text(field if end < 0 else field[:end])


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")
