"""The facts of the off-host copy steps (steps/replicate.py), declared apart from the built-in
page (steps/facts.py) so the two can change independently.

| fact | type | written by | read by |
|---|---|---|---|
| replication | ReplicationReport (in --json) | replicate_backups | - |
| pulled | dict[str, str] | pull_backup | a user's later states |
"""

from __future__ import annotations

import attrs

from ..engine.facts import declare
from .facts import NotBackedUp


@attrs.frozen
class ReplicatedCopy:
    sandbox: str
    timestamp: str
    snapshot: str | None  # None: the repository already held it (same manifest digest)
    bytes: int
    data_added: int = 0


@attrs.frozen
class OffHost:
    repository: str | None  # as shown (any password redacted); None: no repository set
    mode: str  # required | best-effort
    copies: list[ReplicatedCopy] = attrs.Factory(list)
    failed: list[NotBackedUp] = attrs.Factory(list)


@attrs.frozen
class ReplicationReport:
    """One key, `off_host`, in a run's --json summary (the reports' fields are merged there, and
    backup_report has its own `failed`)."""

    off_host: OffHost


declare("replication", ReplicationReport, "What was pushed to the restic repository, skipped or failed.", report=True)
declare("pulled", dict[str, str], "Backups pulled from the restic repository by this run: sandbox -> backup directory.")
