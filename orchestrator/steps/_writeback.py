"""Start the disk writes of a tree while it is still being written (a restic restore into
staging), so that the fsync before its commit finds little left to write.

A pull must make the restored backup durable before its atomic rename (store/staging.py:
fsync, then rename). Left to the kernel, the restored data sits in the page cache until that
fsync, which then writes all of it while the command waits; restic by hand never waits for it.
`sync_file_range(SYNC_FILE_RANGE_WRITE)` starts the write-back of what a file holds so far and
waits for nothing, so called on the files as restic writes them, the disk works beside restic
instead of after it. Durability is unchanged: the commit's own fsync is still what the commit
waits for. Linux only; elsewhere (or where the call fails) this does nothing.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType

from ..store.fsops import start_file_writeback  # the capture's own per-file write-back (one libc binding)


def start_writeback(root: Path) -> None:
    """One pass: start the write-back of every regular file under `root` (symlinks not followed)."""
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            try:
                fd = os.open(os.path.join(dirpath, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                continue  # a symlink, or gone: nothing to write
            try:
                start_file_writeback(fd)
            finally:
                os.close(fd)


class EarlyWriteback:
    """`with EarlyWriteback(root): <write into root>`: passes of `start_writeback` every
    `interval` seconds on a thread (longer when a pass takes long), and one last pass at the end."""

    def __init__(self, root: Path, interval: float = 0.3) -> None:
        self.root, self.interval = Path(root), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="writeback", daemon=True)

    def __enter__(self) -> "EarlyWriteback":
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if exc_type is None:
            start_writeback(self.root)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            began = time.monotonic()
            start_writeback(self.root)
            self.interval = max(self.interval, 2 * (time.monotonic() - began))
