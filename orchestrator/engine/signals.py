"""SIGINT and SIGTERM during a run: an interruption, never an ending.

While a run works (engine/run.py, engine/resume.py) Ctrl-C raises KeyboardInterrupt and SIGTERM
raises `Interrupted` in the main thread, as a kill would stop it there; the run's journal is
then left without an end, so the next mutating command resumes the run exactly as after a
SIGKILL (docs/workflows.md, "Journal and resume"). A few short sections must not be cut in
two, above all the append of one journal line (a torn line would make the journal damaged):
inside `critical()` a signal is held and raised as soon as the section ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Interrupted", "critical", "handling"]


class Interrupted(BaseException):
    """Raised in the main thread on SIGTERM (SIGINT arrives as KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


_depth = 0
_pending: int | None = None


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


def _handler(signum: int, _frame: Any) -> None:
    global _pending
    if _depth > 0:
        _pending = signum  # raised when the critical section ends
        return
    _raise_for(signum)


@contextmanager
def critical() -> Iterator[None]:
    """A section a signal must not cut (main thread only: handlers run there)."""
    global _depth, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            signum, _pending = _pending, None
            _raise_for(signum)


@contextmanager
def handling() -> Iterator[None]:
    """Install the run's SIGINT/SIGTERM handlers for the duration (a no-op outside the main
    thread, where handlers cannot be set); the previous ones are put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(signum)
        if signum == signal.SIGINT and current == signal.SIG_IGN:
            continue  # started in the background with Ctrl-C ignored: keep it so
        previous[signum] = current
        signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
