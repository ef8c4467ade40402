"""What can go wrong talking to a restic repository, each as one sentence naming the repository
(password redacted) and what to do. How restic 0.14 says each (it has no distinct exit codes for
them before 0.17): docs/reference/restic.md."""

from __future__ import annotations

from ...kernel.errors import StepError


class ResticError(StepError):
    """restic failed; the message is one sentence for a person (no stderr dump)."""

    kind = "restic"

    def __init__(self, message: str, *, exit_code: int = 1, detail: str | None = None) -> None:
        super().__init__(message, exit_code=exit_code)
        self.detail = detail  # restic's own last words, redacted (for the journal)
        self.snapshot: str | None = None  # a failed restore: the snapshot it was restoring, when restic said


class ResticNotFound(ResticError):
    pass


class NoPassword(ResticError):
    pass


class RepositoryMissing(ResticError):
    pass


class RepositoryExists(ResticError):
    pass


class RepositoryUnreachable(ResticError):
    kind = "transient"


class WrongPassword(ResticError):
    pass


class RepositoryLocked(ResticError):
    kind = "transient"

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message, exit_code=75, detail=detail)


class ResticTimeout(ResticError):
    kind = "timeout"


class DataError(ResticError):
    """restic read damaged data (a pack that fails its MAC, a missing blob)."""
