"""The store's limits, in process on real files: sparse files stored sparse, entries too long for
the host refused before commit, an unreadable backup reported as damaged, the default
per-sandbox size limit, and the comparison of Docker's archive with a walk of the sandbox."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from orchestrator.store import extract_stream
from orchestrator.store.archive import ArchiveResult, HostLimits
from orchestrator.store.capture import DEFAULT_LIMIT_SHARE, LIMIT_ENV, SpaceBudget
from orchestrator.store.deep_paths import DeepPaths, missing_from
from orchestrator.store.errors import CaptureError
from orchestrator.store.manifest import Manifest, verify
from orchestrator.store.records import DirRecord, FileRecord


def _tar_of(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk", [1 << 20, 32 << 10, 777])
def test_zero_runs_become_holes_and_the_hash_is_of_the_whole_content(tmp_path, chunk):
    """What Docker sends for a sparse file: its holes as zeros, in chunks that do not line up
    with the file's blocks. Staged, only the data takes disk space; the record hashes it all."""
    size = 64 << 20
    body = bytearray(size)
    body[:5000] = os.urandom(5000)
    body[size // 2 : size // 2 + 70000] = os.urandom(70000)
    body[-3:] = b"end"
    data = _tar_of([("img", bytes(body)), ("plain", os.urandom(300000))])
    dest = tmp_path / "d"
    dest.mkdir()
    res = extract_stream(_chunks(data, chunk), dest)
    assert res.ok
    st = os.stat(dest / "img")
    assert st.st_size == size and (dest / "img").read_bytes() == bytes(body)
    assert st.st_blocks * 512 < 2 << 20, st.st_blocks * 512
    img = next(f for f in res.files if f.path == "img")
    assert img.sha256 == hashlib.sha256(body).hexdigest()
    assert res.bytes == size + 300000 and res.stored < 1 << 20


def test_a_file_ending_in_a_hole_keeps_its_size(tmp_path):
    body = b"head" + bytes(10 << 20)
    dest = tmp_path / "d"
    dest.mkdir()
    res = extract_stream(_chunks(_tar_of([("f", body)]), 1 << 20), dest)
    assert res.ok and (dest / "f").stat().st_size == len(body) and (dest / "f").read_bytes() == body


def test_entries_too_long_for_the_host_are_refused_with_the_reason(tmp_path):
    dest = tmp_path / "d"
    dest.mkdir()
    deep = "/".join(["d" * 200] * 20)
    long_name = "n" * 250
    data = _tar_of([("ok/f", b"fine"), (f"{deep}/f", b"lost later"), (f"ok/{long_name}", b"x")])
    # The folder it is committed in is longer than the one it is staged in (dest).
    limits = HostLimits(prefix=len(os.fsencode(str(dest))) + 100, path_max=4096, name_max=200)
    res = extract_stream(_chunks(data, 4096), dest, limits=limits)
    reasons = {r.path.split("/")[0]: r.reason for r in res.rejected}
    assert not res.ok
    assert reasons["d" * 200].startswith("its path is too long for the backup folder on this host (4")
    assert reasons["ok"] == "a name of 250 bytes is too long for the backup folder on this host (at most 200)"
    assert [f.path for f in res.files] == ["ok/f"]


def test_host_limits_take_the_longer_of_the_staging_and_commit_folders(tmp_path):
    short, longer = tmp_path / "s", tmp_path / ("x" * 100)
    short.mkdir()
    lim = HostLimits.below(short, longer)
    assert lim.prefix == len(os.fsencode(str(longer)))
    room = lim.path_max - 1 - lim.prefix - 1
    assert lim.why_not(["a" * min(room, 200)]) is None
    parts = ["b" * 200] * (room // 201 + 1)
    assert "too long" in (lim.why_not(parts) or "")


def _manifest(files: list[FileRecord], dirs: list[DirRecord]) -> Manifest:
    return Manifest(version=1, sandbox_name="s", timestamp="2026-12-03T10-00-00-000Z", agent_type="openclaw",
                    agent_version=None, expected_version=None, state_dirs=[], backed_up_dirs=[], state_files=[],
                    dir="/sandbox", backup_path="/x", blueprint_digest=None, policy_presets=[], files=files,
                    dirs=dirs, scope="home")


def test_verify_reports_an_entry_the_host_cannot_read_as_damaged_not_an_exception(tmp_path):
    root = tmp_path / "b"
    root.mkdir()
    parts = ["d" * 200] * 21
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for p in parts:
        os.mkdir(p, dir_fd=fd)
        nxt = os.open(p, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    out = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(out, b"x")
    os.close(out)
    os.close(fd)
    rel = "/".join([*parts, "f"])
    m = _manifest([FileRecord(rel, 1, hashlib.sha256(b"x").hexdigest(), 0o644)],
                  [DirRecord("/".join(parts[: i + 1]), 0o755) for i in range(len(parts))])
    for kwargs in ({}, {"hash_files": False}):
        mismatch = verify(root, m, **kwargs)
        assert mismatch is not None and mismatch.kind == "unreadable"
        assert "cannot be read on this host (File name too long)" in str(mismatch) and len(str(mismatch)) < 200


def test_the_default_size_limit_is_a_share_of_the_free_space(tmp_path):
    st = os.statvfs(tmp_path)
    free = st.f_bavail * st.f_frsize
    budget = SpaceBudget.from_env({})
    assert budget.share == DEFAULT_LIMIT_SHARE and budget.limit is None
    budget.check(tmp_path)
    assert budget.limit is not None and abs(budget.limit - free * DEFAULT_LIMIT_SHARE) < free * 0.01
    with pytest.raises(CaptureError, match=r"per-sandbox limit of .* \(50 % of the space free when it started"):
        budget.consume(budget.limit + 1, tmp_path)
    assert SpaceBudget.from_env({LIMIT_ENV: "10%"}).share == 0.1
    assert SpaceBudget.from_env({LIMIT_ENV: "none"}).share is None
    assert SpaceBudget.from_env({LIMIT_ENV: "1G"}).limit == 1 << 30
    with pytest.raises(CaptureError, match="is not a share of the free space"):
        SpaceBudget.from_env({LIMIT_ENV: "150%"})


def test_a_walked_entry_the_archive_does_not_hold_is_named():
    got = ArchiveResult(files=[FileRecord("a/long", 1, "0" * 64, 0o644)], dirs=[DirRecord("a", 0o755)])
    deep = DeepPaths("/sandbox", long=("a/long", "a/gone-from-archive", "runtime/x.pid"), unnamed=("a/deeper",))
    missing = missing_from(deep, got, wanted=lambda p: not p.startswith("runtime"))
    assert [m.path for m in missing] == ["a/gone-from-archive", "a/deeper"]
    assert all("past Docker's archive path limit" in m.reason for m in missing)
