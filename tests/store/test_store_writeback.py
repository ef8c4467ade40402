"""Early write-back (store/fsops.py `start_file_writeback`): a capture starts the disk writes
of each file of 64 KiB or more as soon as it is written, and leaves small files to the
commit's syncfs (starting theirs one by one made their creation wait for the journal)."""

from __future__ import annotations

import io
import os
import tarfile

from orchestrator.store import fsops
from orchestrator.store.archive import extract_stream


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_large_files_start_their_write_back_at_once_small_ones_wait_for_the_commit(tmp_path, monkeypatch):
    started: list[int] = []
    real = fsops.start_file_writeback

    def record(fd: int) -> None:
        started.append(os.fstat(fd).st_size)
        real(fd)  # the real call on a real file: it must not fail

    monkeypatch.setattr(fsops, "start_file_writeback", record)
    res = extract_stream([_tar({"big": os.urandom(200 << 10), "small": b"x" * 1000})], tmp_path)
    assert res.ok and sorted(f.path for f in res.files) == ["big", "small"]
    assert started == [200 << 10]
    assert (tmp_path / "big").stat().st_size == 200 << 10
