"""The early write-back of a capture (store/_fsutil.py `_Writeback`): it only moves the syncfs
earlier, so an error a background syncfs saw must fail the commit's `fsync_tree`, which would
otherwise not hear it (a write-back error is reported once per open file of the filesystem)."""

from __future__ import annotations

import errno
import os

import pytest

from orchestrator.store import _fsutil


def test_a_background_syncfs_error_fails_the_next_fsync_tree(tmp_path, monkeypatch):
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "f").write_bytes(b"x")
    real = _fsutil._libc_syncfs()
    assert real is not None  # Linux: syncfs exists
    calls: list[int] = []

    def failing(fd: int) -> int:
        calls.append(fd)
        import ctypes

        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(_fsutil, "_WRITEBACK", {})
    monkeypatch.setattr(_fsutil, "_libc_syncfs", lambda: failing)
    kick = _fsutil.start_writeback(staged)
    kick(_fsutil._Writeback.EVERY - 1)
    assert not calls  # below the threshold: nothing started yet
    kick(1)
    wb = _fsutil._WRITEBACK[os.stat(staged).st_dev]
    assert wb.thread is not None
    wb.thread.join()
    assert calls
    monkeypatch.setattr(_fsutil, "_libc_syncfs", lambda: real)
    with pytest.raises(OSError) as err:
        _fsutil.fsync_tree(staged)
    assert err.value.errno == errno.EIO
    _fsutil.fsync_tree(staged)  # reported once: the next commit's own syncfs decides alone
