"""The streaming tar reader (store/tarstream.py) against tarfile's writer, and as the archive
code's front end against damaged and hostile streams: truncations, bad checksums, garbled and
oversize numeric fields, bad PAX records, `..` smuggled through PAX or GNU long names, and
random mutations of a valid archive. Every damaged stream must end in ArchiveError or a refusal,
never another exception and never a write outside the root."""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import tempfile
import tarfile
from pathlib import Path

import pytest

from orchestrator.store import ArchiveError, extract_stream, hash_stream
from orchestrator.store.tarstream import TarReader

LONG = "d" * 60 + "/" + "e" * 70 + "/" + "f" * 120  # > 100 and > 255 bytes: PAX path / GNU L


def _archive(fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        def add(name: str, kind: bytes, data: bytes | None = None, **kw) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = kw.get("mode", 0o644)
            info.mtime = kw.get("mtime", 1_700_000_000)
            info.linkname = kw.get("link", "")
            info.uid = kw.get("uid", 1000)
            if data is not None:
                info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data is not None else None)

        add("s", tarfile.DIRTYPE, mode=0o755)
        add("s/a", tarfile.REGTYPE, b"alpha" * 300, mode=0o4750)
        add("s/empty", tarfile.REGTYPE, b"")
        add("s/b512", tarfile.REGTYPE, os.urandom(512))
        add(f"s/{LONG}", tarfile.REGTYPE, b"long name")
        add("s/ünï", tarfile.REGTYPE, b"utf8")
        add("s/link", tarfile.SYMTYPE, link="a")
        add("s/longlink", tarfile.SYMTYPE, link="x/" * 80 + "target")
        add("s/hard", tarfile.LNKTYPE, link="s/a")
        if fmt != tarfile.USTAR_FORMAT:
            add("s/biguid", tarfile.REGTYPE, b"u", uid=9_000_000)
    return buf.getvalue()


def _chunks(data: bytes, size: int):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _read_all(data: bytes, size: int) -> list[tuple[str, str, int, int, str, bytes]]:
    out = []
    reader = TarReader(_chunks(data, size))
    for e in reader:
        body = b"".join(bytes(v) for v in reader.body())
        out.append((e.name.rstrip("/"), e.kind, e.mode, e.uid, e.linkname, body))  # tarfile drops a dir's '/'
    return out


def _tarfile_view(data: bytes) -> list[tuple[str, str, int, int, str, bytes]]:
    kinds = {tarfile.REGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t:
            body = t.extractfile(m).read() if m.isreg() else b""
            out.append((m.name, kinds[m.type], m.mode, m.uid, m.linkname, body))
    return out


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("size", [1, 7, 511, 512, 513, 65536])
def test_reads_what_tarfile_writes_in_any_chunking(fmt, size):
    if fmt == tarfile.USTAR_FORMAT:
        with pytest.raises(ValueError):  # ustar alone cannot hold the long name: tarfile refuses
            _archive(fmt)
        return
    data = _archive(fmt)
    assert _read_all(data, size) == _tarfile_view(data)


def test_file_bodies_are_views_of_the_received_chunks_not_copies():
    data = _archive()
    chunks = [bytes(c) for c in _chunks(data, 1 << 20)]
    reader = TarReader(chunks)
    for e in reader:
        if e.name == "s/a":
            [view] = list(reader.body())
            assert isinstance(view, memoryview) and view.obj is chunks[0]


def test_truncated_anywhere_is_an_archive_error_or_complete():
    data = _archive()
    whole = _tarfile_view(data)
    complete_from = None
    for cut in range(0, len(data), 97):
        try:
            got = _read_all(data[:cut], 4096)
        except ArchiveError:
            continue
        assert got == whole, f"cut at {cut} returned a partial archive without an error"
        complete_from = cut if complete_from is None else complete_from
    assert complete_from is not None and complete_from > len(data) - 20 * 512  # only after the end marker


def _header_offsets(data: bytes) -> list[int]:
    offs, pos = [], 0
    while pos + 512 <= len(data) and data[pos : pos + 512] != b"\0" * 512:
        offs.append(pos)
        size = int(data[pos + 124 : pos + 136].split(b"\0")[0].strip() or b"0", 8)
        kind = data[pos + 156 : pos + 157]
        body = size if kind in (b"0", b"\0", b"x", b"g", b"L", b"K") else 0
        pos += 512 + -(-body // 512) * 512
    return offs


def _fix_checksum(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)


def _patch(data: bytes, off: int, field: slice, value: bytes, fix: bool = True) -> bytes:
    out = bytearray(data)
    hdr = bytearray(out[off : off + 512])
    hdr[field] = value.ljust(field.stop - field.start, b"\0")
    if fix:
        _fix_checksum(hdr)
    out[off : off + 512] = hdr
    return bytes(out)


@pytest.mark.parametrize(
    "field,value,why",
    [
        (slice(148, 156), b"0000000\0", "bad checksum"),
        (slice(124, 136), b"0000000009\0", "garbled size"),
        (slice(124, 136), b"\x80" + b"\xff" * 11, "invalid size"),  # base-256: 2^88
        (slice(124, 136), b"\xff" * 12, "garbled size"),  # base-256 negative
        (slice(100, 108), b"07x7\0", "garbled mode"),
        (slice(136, 148), b"1 2\0", "garbled mtime"),
        (slice(257, 265), b"nottar\0\0", "no ustar"),
    ],
)
def test_damaged_header_fields_are_archive_errors(field, value, why, tmp_path):
    data = _archive()
    off = _header_offsets(data)[2]
    bad = _patch(data, off, field, value, fix=field != slice(148, 156))
    with pytest.raises(ArchiveError):
        _read_all(bad, 1000)
    with pytest.raises(ArchiveError):
        extract_stream([bad], tmp_path)


def _pax_archive(records: bytes, name: str = "plain", data: bytes = b"x") -> bytes:
    """A PAX header with exactly `records` as its body, then one regular file."""
    def block(name: bytes, kind: bytes, size: int) -> bytes:
        h = bytearray(512)
        h[0 : len(name)] = name
        h[100:108] = b"0000644\0"
        h[108:116] = h[116:124] = b"0000000\0"
        h[124:136] = b"%011o\0" % size
        h[136:148] = b"%011o\0" % 0
        h[156:157] = kind
        h[257:265] = b"ustar\x0000"
        _fix_checksum(h)
        return bytes(h)

    def pad(b: bytes) -> bytes:
        return b + b"\0" * (-len(b) % 512)

    return (block(b"././@PaxHeader", b"x", len(records)) + pad(records) + block(name.encode(), b"0", len(data))
            + pad(data) + b"\0" * 1024)


def _rec(key: str, value: bytes) -> bytes:
    body = f" {key}=".encode() + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n += 1
    return str(n).encode() + body


@pytest.mark.parametrize(
    "records",
    [
        b"30 path=short\n",  # length too long for the body
        b"5 path=somewhat-longer\n",  # length too short
        b"0 path=x\n",
        b"x2 path=x\n",
        b"12 path=abc\x00",  # not newline-terminated
        b"9 =empty\n",  # no key
        _rec("size", b"-5"),
        _rec("size", b"99999999999999999999999"),
        _rec("size", b"12abc"),
        _rec("mtime", b"yesterday"),
        _rec("uid", b"1e3"),
    ],
)
def test_bad_pax_records_are_archive_errors(records, tmp_path):
    with pytest.raises(ArchiveError):
        extract_stream([_pax_archive(records)], tmp_path)


def test_pax_and_gnu_names_with_dotdot_are_refused(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    res = extract_stream([_pax_archive(_rec("path", b"../../escaped"))], dest)
    assert [(r.path, r.reason) for r in res.rejected] == [("../../escaped", "'..' path component")]
    res = extract_stream([_pax_archive(_rec("path", b"/etc/evil"))], dest)
    assert [r.reason for r in res.rejected] == ["absolute path"]
    res = extract_stream([_pax_archive(_rec("path", b"a\x00b"))], dest)
    assert [r.reason for r in res.rejected] == ["NUL byte in name"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo("../" * 40 + "x" * 100)
        info.size = 1
        t.addfile(info, io.BytesIO(b"z"))
        link = tarfile.TarInfo("ok")
        link.type = tarfile.LNKTYPE
        link.linkname = "../" * 40 + "etc/passwd"
        t.addfile(link)
    res = extract_stream([buf.getvalue()], dest)
    assert [r.reason for r in res.rejected][0] == "'..' path component"
    assert "not an earlier file" in res.rejected[1].reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"] and list(dest.iterdir()) == []


def test_structural_damage_is_an_archive_error(tmp_path):
    good = _archive()
    cases = {
        "empty": b"",
        "no end marker": good[: _header_offsets(good)[-1]],
        "extended header at the end": _pax_archive(_rec("path", b"x"))[:1024] + b"\0" * 1024,
        "oversize PAX header": _pax_archive(b"")[:124] + b"%011o\0" % (2 << 20) + _pax_archive(b"")[136:],
        "garbage": os.urandom(4096),
    }
    for what, data in cases.items():
        with pytest.raises(ArchiveError):
            extract_stream([data] if data else [], tmp_path)
        with pytest.raises(ArchiveError):
            hash_stream([data] if data else [])


def _snapshot(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = os.readlink(p) if os.path.islink(p) else (
                b"<dir>" if os.path.isdir(p) else Path(p).read_bytes())
    return out


@pytest.fixture
def scratch(tmp_path):
    """A scratch directory in memory (tmpfs) when the machine has one: the fuzzing below makes
    thousands of files, and on a virtual disk their creation was most of its time."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(prefix="nemoclaw-fuzz-", dir=shm))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_random_mutations_never_escape_and_never_crash(scratch):
    """Seeded fuzzing: byte flips (half of them with a repaired header checksum, to get past it
    into the field parsers), cuts and splices of a valid archive with long names, links and a
    hard link. Only ArchiveError may escape; nothing is ever written outside the root."""
    tmp_path = scratch
    rng = random.Random(14)
    base = _archive()
    offsets = _header_offsets(base)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    before = _snapshot(outside)
    outcomes = {"error": 0, "refused": 0, "clean": 0}
    for i in range(400):
        data = bytearray(base)
        op = rng.random()
        if op < 0.15:  # a hostile name or link target, with a valid checksum
            off = rng.choice(offsets)
            hdr = bytearray(data[off : off + 512])
            field = rng.choice([slice(0, 100), slice(157, 257)])
            hdr[field] = rng.choice([b"../x", b"/etc/x", b"s/../../x", b"s/link/x", b"a\x00b", b""]).ljust(100, b"\0")
            _fix_checksum(hdr)
            data[off : off + 512] = hdr
        elif op < 0.6:
            for _ in range(rng.randint(1, 6)):
                off = rng.choice(offsets)
                pos = off + rng.randrange(512)
                data[pos] = rng.randrange(256)
                if rng.random() < 0.5:
                    hdr = bytearray(data[off : off + 512])
                    _fix_checksum(hdr)
                    data[off : off + 512] = hdr
        elif op < 0.8:
            data = data[: rng.randrange(len(data))]
        else:
            a, b = sorted(rng.randrange(len(data)) for _ in range(2))
            data = data[:a] + data[b:] + data[a:b]
        dest = tmp_path / f"d{i}"
        dest.mkdir()
        try:
            res = extract_stream(_chunks(bytes(data), rng.choice([7, 100, 512, 4096, 1 << 20])), dest)
            hash_stream([bytes(data)])
        except ArchiveError:
            outcomes["error"] += 1
        else:
            outcomes["refused" if res.rejected else "clean"] += 1
            for f in res.files:  # what was recorded is what is on disk
                assert hashlib.sha256((dest / f.path).read_bytes()).hexdigest() == f.sha256
        stray = [n for n in os.listdir(tmp_path) if n != outside.name and not n.startswith("d")]
        assert not stray, stray
        assert _snapshot(outside) == before
    assert outcomes["error"] > 50 and outcomes["refused"] > 10 and outcomes["clean"] > 0, outcomes
