"""How long backup-all may keep a sandbox frozen (Docker pause) while its state is read.

A frozen read is a point-in-time copy, but a sandbox whose state is huge (or a read that stalls)
would stay frozen for as long as it takes. Past the declared limit (`FREEZE_ENV`, default
`DEFAULT_SECONDS`) the frozen read is stopped, the sandbox unfrozen and its state read again
live: that backup is marked not point-in-time (the manifest's `pointInTime: false`) and says so;
under `--strict`, which asks for point-in-time backups, that sandbox's backup fails instead.
docs/backups.md, "The freeze limit".

The engine keeps a container's lock while one of its archive streams is open, so the read is
stopped (its stream closed) before the unpause, never unpaused under it.
"""

from __future__ import annotations

import os
import time

__all__ = ["DEFAULT_SECONDS", "FREEZE_ENV", "FreezeLimit", "Deadline", "limit_seconds", "strict_message", "warning"]

FREEZE_ENV = "NEMOCLAW_BACKUP_FREEZE_MAX_SECONDS"
DEFAULT_SECONDS = 30.0


class FreezeLimit(Exception):
    """Raised in the reading thread once the sandbox has been frozen for the limit."""


def limit_seconds(env: dict[str, str] | None = None) -> float:
    """The declared limit; a value that is not a positive number is a plain error."""
    from ..kernel.errors import StepError

    raw = (os.environ if env is None else env).get(FREEZE_ENV, "").strip()
    if not raw:
        return DEFAULT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value:
        raise StepError(f"{FREEZE_ENV}={raw!r} is not a number of seconds: use a positive number (e.g. 30)")
    return value


class Deadline:
    """`due()` once `seconds` have passed since `start()`; `is_set()` too, so it can stand in for
    the cancel event of the test pause hook (which then stops waiting)."""

    def __init__(self, seconds: float, cancel: object) -> None:
        self.seconds = seconds
        self._cancel = cancel
        self._at: float | None = None

    def start(self) -> None:
        self._at = time.monotonic() + self.seconds

    def stop(self) -> None:
        self._at = None

    def due(self) -> bool:
        return self._at is not None and time.monotonic() >= self._at

    def is_set(self) -> bool:
        return self.due() or bool(self._cancel.is_set())  # type: ignore[attr-defined]

    def check(self) -> None:
        if self.due():
            raise FreezeLimit()


def _shown(seconds: float) -> str:
    return f"{seconds:g} s"


def strict_message(seconds: float) -> str:
    return (f"it stayed frozen for the freeze limit of {_shown(seconds)} ({FREEZE_ENV}) and --strict asks for a "
            "point-in-time backup; nothing of it was committed. Raise the limit, or rerun without --strict for a "
            "backup read live")


def warning(seconds: float) -> str:
    return (f"frozen for the freeze limit of {_shown(seconds)} ({FREEZE_ENV}); its state was read again live, "
            "so this backup is not point-in-time")
