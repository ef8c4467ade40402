"""The facts of the store steps (steps/store_ops.py), declared apart from the built-in page
(steps/facts.py) so the two can change independently. Both are reports: in a run's --json
summary, under one key each (`pruned`, `verified`: the reports' fields are merged there).

| fact | type | written by | read by |
|---|---|---|---|
| prune_report | PruneReport (in --json) | prune_backups | - |
| verify_report | VerifyReport (in --json) | verify_backups | - |
"""

from __future__ import annotations

import attrs

from ..engine.facts import declare


@attrs.frozen
class BackupSlot:
    sandbox: str
    timestamp: str


@attrs.frozen
class DamagedBackup:
    sandbox: str
    timestamp: str
    problem: str


@attrs.frozen
class Pruned:
    removed: list[BackupSlot] = attrs.Factory(list)
    kept: list[BackupSlot] = attrs.Factory(list)
    # kept beyond `keep`: the newest backup of its sandbox that verifies
    protected: list[BackupSlot] = attrs.Factory(list)
    damaged: list[DamagedBackup] = attrs.Factory(list)


@attrs.frozen
class PruneReport:
    pruned: Pruned


@attrs.frozen
class VerifiedBackup:
    sandbox: str | None
    timestamp: str | None
    path: str
    ok: bool
    problem: str | None = None
    # the percentage of files re-hashed (every file's presence and size checked); None: all
    sample: float | None = None


@attrs.frozen
class VerifyReport:
    verified: list[VerifiedBackup]


declare("prune_report", PruneReport, "What prune_backups removed and kept, and the damaged backups it found.",
        report=True)
declare("verify_report", VerifyReport, "Each backup verify_backups checked against its manifest, and what is wrong "
        "with it.", report=True)
