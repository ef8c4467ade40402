"""restic, the off-host copy of the backup store: the `restic` on PATH driven with `--json`
(client.py), the repository from the environment with its secrets redacted (config.py), its
JSON as records (messages.py), its failures as one-sentence errors (errors.py).
What we rely on about restic 0.14: docs/reference/restic.md."""

from .client import Restic, classify
from .config import REPOSITORY_ENV, Repository, configured, redact_location, repository
from .errors import (
    DataError,
    NoPassword,
    RepositoryExists,
    RepositoryLocked,
    RepositoryMissing,
    RepositoryUnreachable,
    ResticError,
    ResticNotFound,
    ResticTimeout,
    WrongPassword,
)
from .messages import TAG_PREFIX, BackupStatus, BackupSummary, Snapshot

__all__ = [
    "Restic", "classify", "REPOSITORY_ENV", "Repository", "configured", "redact_location", "repository",
    "DataError", "NoPassword", "RepositoryExists", "RepositoryLocked", "RepositoryMissing", "RepositoryUnreachable",
    "ResticError", "ResticNotFound", "ResticTimeout", "WrongPassword", "TAG_PREFIX", "BackupStatus", "BackupSummary",
    "Snapshot",
]
