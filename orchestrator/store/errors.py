"""Errors of the backup store (their base `StoreError` and `ManifestError`, which the agent
definitions raise too, live in kernel/errors.py).

They do not derive from the engine's StepError on purpose: the store is below the engine.
Steps translate them (e.g. `StepError(str(exc), exit_code=...)`); the CLI maps
`LockHeld.exit_code` (75, EX_TEMPFAIL: "try again later") directly.
"""

from __future__ import annotations

from ..kernel.errors import ManifestError, StoreError

__all__ = ["StoreError", "StagingError", "LockHeld", "CaptureError", "ArchiveError", "ManifestError", "RestoreError"]


class StagingError(StoreError):
    """A staging area or a commit could not be done safely (nothing was committed)."""


class LockHeld(StoreError):
    """Another live run holds the writer lock."""

    exit_code = 75

    def __init__(self, message: str, holder: object | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class CaptureError(StoreError):
    """A sandbox could not be captured as a whole (its container is gone, the disk would be full,
    it is larger than the configured limit): nothing of that capture may be committed."""


class ArchiveError(StoreError):
    """The archive stream itself is unreadable (truncated, not a tar)."""


class RestoreError(StoreError):
    """Writing a backup back into a sandbox failed."""
