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
    assert reasons["/abs"] == "absolute path"
    assert reasons["../x"] == reasons["state/../../x2"] == "'..' path component"
    assert "outside the backup" in reasons["state/esc"]
    assert "through the symlink" in reasons["state/esc/pwned"]
    assert "absolute" in reasons["state/absl"]
    assert reasons["state/hl"].startswith("hard link") and reasons["state/hl2"].startswith("hard link")
    assert reasons["state/chr"] == reasons["state/blk"] == "device node"
    assert reasons["state/fifo"] == "FIFO"
    assert "outside the backup" in reasons["state/chain1"]  # chain2 -> .. is inside; chain2/.. is not
    assert reasons["rebuild-manifest.json"] == "reserved name"
    assert _tree(tmp_path) - before == {"dest/state", "dest/state/good", "dest/state/inside", "dest/state/chain2"}
    assert (outside / "secret").read_text() == "s" and list(outside.iterdir()) == [outside / "secret"]
    assert [(f.path, f.size, f.mode) for f in res.files] == [("state/good", 4, 0o755)]  # setuid dropped
    assert (dest / "state" / "good").stat().st_mode & 0o7777 == 0o755
    assert os.readlink(dest / "state" / "inside") == "good"


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
    blobs = {f"d/f{i}": os.urandom(i * 37_000) for i in range(1, 6)}
    data = _tar(("d", tarfile.DIRTYPE, {}), *((n, tarfile.REGTYPE, {"data": b}) for n, b in blobs.items()))
    total = len(list(_chunks(data, 4096)))
    pulled = 0

    def chunks():
        nonlocal pulled
        for c in _chunks(data, 4096):
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
    reasons = {r.path: r.reason for r in res.rejected}
    assert "absolute" in reasons["agents/escape-abs"]
    assert "outside the backup" in reasons["agents/escape-rel"]
    assert reasons["agents/null-dev"] == "device node"
    assert reasons["agents/pipe"] == "FIFO"
    # Docker stores the second name of a hard-linked file as a hard link entry.
    assert sum(r.startswith("hard link") for r in reasons.values()) == 1
    written = _tree(tmp_path) - before
    assert all(p.startswith("dest/") or p == "dest" for p in written)
    assert "dest/agents/escape-abs" not in written and "dest/agents/null-dev" not in written
    assert os.readlink(dest / "agents" / "fine-link") == "sub/ok"
