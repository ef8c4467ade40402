"""Test kill points inside steps: stop at an exact point so a test can SIGKILL the process there.

Test hook (inactive unless the variable is set): `NEMOCLAW_TEST_PAUSE_AT=<point>:<sandbox>`
stops the run at that point of that sandbox's backup, writes the file named by
`NEMOCLAW_TEST_PAUSE_MARKER` (`<pid> <run id> <point>:<sandbox>`) and waits there (at most
10 minutes; an interrupted run stops waiting) so that a test can kill the process at an exact
point, or change something and remove the marker file to let the run go on. Points: `archive` (the first file of the sandbox's archive is in staging, its stream
still open), `before_commit` (its staged copy re-verified, right before the rename into
place), `after_commit` (right after that rename, before the next sandbox's), `restore` (a
rebuild's or a `restore_backup`'s upload into the sandbox is under way, its first file sent),
`prune` (`prune_backups` has removed one backup of that sandbox, the others not yet). State
boundaries have their own hook in the engine (NEMOCLAW_TEST_KILL_AT, engine/drive.py).
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine.context import RunContext


class Cancelled(Exception):
    """Raised inside a worker's progress callback once the run is interrupted."""


PAUSE_ENV = "NEMOCLAW_TEST_PAUSE_AT"
PAUSE_MARKER_ENV = "NEMOCLAW_TEST_PAUSE_MARKER"
_PAUSE_MAX_SECONDS = 600.0
_paused: set[str] = set()


def pause_point(ctx: "RunContext", point: str, name: str, cancel: threading.Event | None = None) -> None:
    """The test hook described in the module docstring; a no-op unless PAUSE_ENV names this point."""
    where = f"{point}:{name}"
    if os.environ.get(PAUSE_ENV) != where or where in _paused:
        return
    _paused.add(where)
    marker = os.environ.get(PAUSE_MARKER_ENV)
    note = f"{os.getpid()} {ctx.run_id} {where}\n"
    if marker:
        tmp = f"{marker}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(note)
        os.replace(tmp, marker)  # the test sees the whole line or nothing
    else:
        ctx.out.say(f"{PAUSE_ENV}: paused at {where} (pid {os.getpid()})", err=True)
    deadline = time.monotonic() + _PAUSE_MAX_SECONDS
    while time.monotonic() < deadline:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if marker and not os.path.exists(marker):
            return  # the test removed the marker: go on (e.g. after changing the sandbox under us)
        time.sleep(0.05)
