"""Streaming extraction of hostile and honest archives: hand-made tar streams and real containers."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from orchestrator.store import ArchiveError, extract_stream, hash_stream, pack_directory


def _tar(*entries: tuple) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            data = None
            if kind == tarfile.REGTYPE:
                data = extra.get("data", b"")
                info.size = len(data)
            info.mode = extra.get("mode", 0o644)
            info.linkname = extra.get("link", "")
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _chunks(data: bytes, size: int = 700):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def area(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    return dest, outside


def test_hostile_entries_are_refused_and_nothing_is_written_outside(area, tmp_path):
    dest, outside = area
    before = _tree(tmp_path)
    data = _tar(
        ("state", tarfile.DIRTYPE, {"mode": 0o755}),
        ("state/good", tarfile.REGTYPE, {"data": b"fine", "mode": 0o4755}),
        ("/abs", tarfile.REGTYPE, {"data": b"x"}),
        ("../x", tarfile.REGTYPE, {"data": b"x"}),
        ("state/../../x2", tarfile.REGTYPE, {"data": b"x"}),
        ("state/esc", tarfile.SYMTYPE, {"link": "../../outside"}),
        ("state/esc/pwned", tarfile.REGTYPE, {"data": b"x"}),
        ("state/absl", tarfile.SYMTYPE, {"link": "/etc"}),
        ("state/hl", tarfile.LNKTYPE, {"link": "../outside/secret"}),
        ("state/hl2", tarfile.LNKTYPE, {"link": "state/good"}),
        ("state/chr", tarfile.CHRTYPE, {}),
        ("state/blk", tarfile.BLKTYPE, {}),
        ("state/fifo", tarfile.FIFOTYPE, {}),
        ("state/chain1", tarfile.SYMTYPE, {"link": "chain2/.."}),
        ("state/chain2", tarfile.SYMTYPE, {"link": ".."}),
        ("state/inside", tarfile.SYMTYPE, {"link": "good"}),
        ("rebuild-manifest.json", tarfile.REGTYPE, {"data": b"{}"}),
    )
    res = extract_stream(_chunks(data), dest)
    reasons = {r.path: r.reason for r in res.rejected}
    assert reasons.pop("/abs") == "absolute path"
    assert reasons.pop("../x") == reasons.pop("state/../../x2") == "'..' path component"
    assert "through the symlink state/esc" in reasons.pop("state/esc/pwned")
    assert "not an earlier file" in reasons.pop("state/hl")  # a hard link to something outside
    assert reasons.pop("rebuild-manifest.json") == "reserved name"
    assert reasons == {}
    # Recorded, not refused: links of any target (never followed), special files skipped.
    assert {(s.path, s.target) for s in res.symlinks} == {
        ("state/esc", "../../outside"), ("state/absl", "/etc"), ("state/chain1", "chain2/.."),
        ("state/chain2", ".."), ("state/inside", "good"),
    }
    assert {(r.path, r.reason) for r in res.skipped} == {
        ("state/chr", "device node"), ("state/blk", "device node"), ("state/fifo", "FIFO")}
    assert _tree(tmp_path) - before == {
        "dest/state", "dest/state/good", "dest/state/hl2", "dest/state/esc", "dest/state/absl",
        "dest/state/chain1", "dest/state/chain2", "dest/state/inside"}
    assert (outside / "secret").read_text() == "s" and list(outside.iterdir()) == [outside / "secret"]
    # The hard link is a separate file with the same bytes; setuid is recorded, not kept on disk.
    assert sorted((f.path, f.size, f.mode) for f in res.files) == [("state/good", 4, 0o4755), ("state/hl2", 4, 0o644)]
    assert (dest / "state" / "hl2").read_bytes() == b"fine"
    assert os.stat(dest / "state" / "hl2").st_ino != os.stat(dest / "state" / "good").st_ino
    assert (dest / "state" / "good").stat().st_mode & 0o7777 == 0o755
    assert os.readlink(dest / "state" / "inside") == "good" and os.readlink(dest / "state" / "absl") == "/etc"
    assert os.path.islink(dest / "state" / "esc")


def test_symlink_planted_by_an_earlier_stream_is_not_followed(area):
    dest, outside = area
    extract_stream(_chunks(_tar(("a", tarfile.DIRTYPE, {}), ("a/sub", tarfile.DIRTYPE, {}))), dest)
    os.symlink(outside, dest / "a" / "sub" / "link")  # as if planted earlier
    res = extract_stream(_chunks(_tar(("a/sub/link/pwned", tarfile.REGTYPE, {"data": b"x"}))), dest)
    assert [r.path for r in res.rejected] == ["a/sub/link/pwned"]
    assert "symlink" in res.rejected[0].reason
    assert not (outside / "pwned").exists()


def test_extraction_streams_and_hashes_in_one_pass(area):
    dest, _ = area
    # ~22 MB: far more than the reader's bounded read-ahead (a few 1 MiB batches).
    blobs = {f"d/f{i}": os.urandom(i * 1_500_000 + 37) for i in range(1, 6)}
    data = _tar(("d", tarfile.DIRTYPE, {}), *((n, tarfile.REGTYPE, {"data": b}) for n, b in blobs.items()))
    total = len(list(_chunks(data, 65536)))
    pulled = 0

    def chunks():
        nonlocal pulled
        for c in _chunks(data, 65536):
            pulled += 1
            yield c

    at_first_file: list[int] = []
    progress: list[tuple[int, int]] = []

    def on_progress(b: int, f: int) -> None:
        progress.append((b, f))
        if f == 1 and not at_first_file:
            at_first_file.append(pulled)

    res = extract_stream(chunks(), dest, on_progress=on_progress)
    assert at_first_file and at_first_file[0] < total / 2  # the archive was never read whole first
    assert progress[-1] == (sum(map(len, blobs.values())), len(blobs))
    assert {f.path: f.sha256 for f in res.files} == {n: hashlib.sha256(b).hexdigest() for n, b in blobs.items()}
    for n, b in blobs.items():
        assert (dest / n).read_bytes() == b


def test_truncated_stream_is_an_archive_error(area):
    dest, _ = area
    data = _tar(("f", tarfile.REGTYPE, {"data": os.urandom(5000)}))
    with pytest.raises(ArchiveError):
        extract_stream(_chunks(data[:2048]), dest)
    with pytest.raises(ArchiveError):
        extract_stream([b"this is not a tar archive" * 40], dest)


def test_pack_directory_round_trips_and_hash_stream_writes_nothing(area, tmp_path):
    dest, _ = area
    src = tmp_path / "src"
    (src / "agents" / "deep").mkdir(parents=True)
    (src / "agents" / "deep" / "a").write_bytes(os.urandom(70_000))
    (src / "agents" / "empty").write_bytes(b"")
    (src / "agents" / "l").symlink_to("deep/a")
    (src / "runtime").mkdir()
    (src / "runtime" / "state.db").write_bytes(b"db")
    stream = pack_directory(src, ["agents", "runtime/state.db"], modes={"agents/empty": 0o600}, owner=(1000, 1000))
    chunks = list(stream)
    assert max(map(len, chunks)) <= 1 << 20
    before = _tree(tmp_path)
    res = hash_stream(chunks)
    assert _tree(tmp_path) == before
    assert not res.rejected
    assert {f.path for f in res.files} == {"agents/deep/a", "agents/empty", "runtime/state.db"}
    assert {f.path: f.mode for f in res.files}["agents/empty"] == 0o600
    assert [(s.path, s.target) for s in res.symlinks] == [("agents/l", "deep/a")]
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as t:
        assert {m.uid for m in t.getmembers()} == {1000}
    res2 = extract_stream(chunks, dest)
    assert {f.sha256 for f in res2.files} == {f.sha256 for f in res.files}


# --- real containers ---------------------------------------------------------------------------


@pytest.fixture
def container(docker_client, base_image, unique):
    c = docker_client.containers.run(base_image, ["sleep", "600"], name=f"nemoclaw-store-{unique}",
                                     network_mode="none", detach=True)
    try:
        yield c
    finally:
        c.remove(force=True)


def _sh(c, script: str) -> str:
    rc, out = c.exec_run(["sh", "-c", script])
    assert rc == 0, out.decode()
    return out.decode()


@pytest.mark.docker
def test_container_archive_hashes_match_sha256sum(container, tmp_path):
    _sh(container, """
        set -e
        mkdir -p /sandbox/.openclaw/agents/main/sessions /sandbox/.openclaw/agents/empty
        cd /sandbox/.openclaw/agents
        : > zero
        printf x > main/one
        head -c 511 /dev/urandom > main/b511
        head -c 512 /dev/urandom > main/b512
        head -c 513 /dev/urandom > main/sessions/b513
        head -c 1048577 /dev/urandom > main/sessions/mib
        head -c 3000000 /dev/urandom > main/sessions/big
        chmod 600 main/one
    """)
    want = {}
    for line in _sh(container, "cd /sandbox/.openclaw && find agents -type f | xargs sha256sum").splitlines():
        digest, path = line.split()
        want[path] = digest
    chunks, _ = container.get_archive("/sandbox/.openclaw/agents")
    seen: list[tuple[int, int]] = []
    res = extract_stream(chunks, tmp_path, only_under="agents", on_progress=lambda b, f: seen.append((b, f)))
    assert not res.rejected
    assert {f.path: f.sha256 for f in res.files} == want
    assert {f.path: f.mode for f in res.files}["agents/main/one"] == 0o600
    assert {d.path for d in res.dirs} >= {"agents", "agents/main", "agents/main/sessions", "agents/empty"}
    assert (tmp_path / "agents" / "empty").is_dir()
    assert seen[-1] == (res.bytes, len(want)) and res.bytes == 1 + 511 + 512 + 513 + 1048577 + 3000000
    for path, digest in want.items():
        assert hashlib.sha256((tmp_path / path).read_bytes()).hexdigest() == digest


@pytest.mark.docker
def test_container_with_hostile_entries(container, tmp_path):
    _sh(container, """
        set -e
        mkdir -p /sandbox/.openclaw/agents/sub
        cd /sandbox/.openclaw/agents
        echo ok > sub/ok
        ln -s /etc escape-abs
        ln -s ../../../../etc escape-rel
        ln -s sub/ok fine-link
        mknod null-dev c 1 3
        mkfifo pipe
        ln sub/ok hard
    """)
    dest = tmp_path / "dest"
    dest.mkdir()
    before = _tree(tmp_path)
    chunks, _ = container.get_archive("/sandbox/.openclaw/agents")
    res = extract_stream(chunks, dest, only_under="agents")
    assert res.rejected == []
    assert {(s.path, s.target) for s in res.symlinks} == {
        ("agents/escape-abs", "/etc"), ("agents/escape-rel", "../../../../etc"), ("agents/fine-link", "sub/ok")}
    assert {(r.path, r.reason) for r in res.skipped} == {("agents/null-dev", "device node"), ("agents/pipe", "FIFO")}
    # Docker stores the second name of a hard-linked file as a hard link entry: it becomes a copy.
    assert {f.path for f in res.files} == {"agents/sub/ok", "agents/hard"}
    assert len({f.sha256 for f in res.files}) == 1
    assert (dest / "agents" / "hard").read_text() == "ok\n" and not os.path.islink(dest / "agents" / "hard")
    written = _tree(tmp_path) - before
    assert all(p.startswith("dest/") or p == "dest" for p in written)
    assert "dest/agents/null-dev" not in written and "dest/agents/pipe" not in written
    assert os.readlink(dest / "agents" / "fine-link") == "sub/ok"
    assert os.readlink(dest / "agents" / "escape-abs") == "/etc"


def test_check_written_proves_the_staged_tree_without_rereading_it(area):
    from orchestrator.store.archive import check_written

    dest, _ = area
    data = _tar(("d", tarfile.DIRTYPE, {}), ("d/a", tarfile.REGTYPE, {"data": b"aaaa"}),
                ("d/b", tarfile.REGTYPE, {"data": b"bbbb"}), ("d/l", tarfile.SYMTYPE, {"link": "/usr/bin/python3"}))
    res = extract_stream(_chunks(data), dest)
    assert check_written(dest, res) is None
    fd = os.open(dest / "d" / "a", os.O_WRONLY)
    os.pwrite(fd, b"X", 0)  # same size, other bytes
    os.close(fd)
    assert check_written(dest, res).path == "d/a"
    dest = dest.parent / "dest2"
    dest.mkdir()
    res = extract_stream(_chunks(_tar(("e", tarfile.REGTYPE, {"data": b"eeee"}))), dest)
    (dest / "e.new").write_bytes(b"eeee")
    os.replace(dest / "e.new", dest / "e")  # same bytes, another inode
    assert check_written(dest, res).path == "e"
    dest = dest.parent / "dest3"
    dest.mkdir()
    res = extract_stream(_chunks(_tar(("f", tarfile.REGTYPE, {"data": b"f"}))), dest)
    (dest / "extra").write_bytes(b"")
    assert check_written(dest, res).reason == "file is not in the records"
    os.unlink(dest / "extra")
    assert check_written(dest, res) is None
    os.unlink(dest / "f")
    assert check_written(dest, res).reason == "recorded but missing"


@pytest.mark.docker
def test_container_long_and_unicode_names(container, tmp_path):
    """Docker writes PAX headers for long and non-ASCII names: the reader follows them."""
    long_dir = "d" * 90 + "/" + "e" * 90 + "/" + "f" * 90
    _sh(container, f"""
        set -e
        mkdir -p /sandbox/.openclaw/agents/{long_dir}
        cd /sandbox/.openclaw/agents
        echo deep > {long_dir}/{'n' * 150}
        echo uni > 'ünïcødé ✓'
        ln -s {'t' * 200} longlink
    """)
    want = {}
    for line in _sh(container, "cd /sandbox/.openclaw && find agents -type f -print0 | xargs -0 sha256sum").splitlines():
        digest, path = line.split(None, 1)
        want[path] = digest
    chunks, _ = container.get_archive("/sandbox/.openclaw/agents")
    res = extract_stream(chunks, tmp_path, only_under="agents")
    assert not res.rejected
    assert {f.path: f.sha256 for f in res.files} == want
    assert [(s.path, s.target) for s in res.symlinks] == [("agents/longlink", "t" * 200)]
    assert (tmp_path / "agents" / "ünïcødé ✓").read_text() == "uni\n"
