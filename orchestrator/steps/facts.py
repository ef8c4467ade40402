"""Every built-in fact, on one page: the data contract between the built-in steps.

A fact is written by the steps whose signature lists it under `writes` and read by those that
list it under `reads`/`may_read`; the loader checks that a workflow writes a fact before any
state reads it, and the journal records each fact when the state that wrote it ends, so that an
interrupted run can be resumed from the journal alone. Values are attrs records or plain types,
so the one cattrs converter (engine/facts.py) can round-trip them.

| fact | type | written by | read by |
|---|---|---|---|
| registry | list[SandboxEntry] | read_registry | snapshot, rebuild_target, classify_versions; delete/restore/record, rollback (may) |
| cli_version | str \\| None | preflight | sandbox_list (may) |
| sandbox_list | SandboxList | sandbox_list | snapshot, rebuild_target, classify_versions |
| backup_targets | list[str] | rebuild_target | snapshot (may) |
| snapshot | Snapshot | snapshot | commit_backups |
| committed | dict[str, str] | commit_backups | restore_sandbox, verify_rebuild, rollback_rebuild |
| backup_report | BackupReport (in --json) | commit_backups | - |
| rebuild_plan | RebuildPlan | rebuild_target | delete/create/wait/restore/verify/record, rollback |
| sandbox_deleted | bool | delete_sandbox | rollback_rebuild (may) |
| version_report | VersionReport (in --json) | classify_versions | confirm_rebuilds |
| to_rebuild | list[str] | confirm_rebuilds | a foreach's items |
| item_results | dict[str, ItemResult] | a foreach state | rebuild_report |
| rebuild_summary | RebuildSummary (in --json) | rebuild_report | - |
"""

from __future__ import annotations

import attrs

from ..engine.facts import declare
from ..engine.foreach import ItemResult
from ..adapters.nemoclaw_registry import SandboxEntry


@attrs.frozen
class SandboxList:
    """What `openshell sandbox list` reported (names by phase, ids from `-o json`)."""

    live: list[str]
    ready: list[str]
    phases: dict[str, str]
    ids: dict[str, str]
    format: str
    recovered: bool = False
    workspaces: dict[str, str] = attrs.Factory(dict)  # OpenShell >= 0.0.88: sandbox -> workspace


@attrs.frozen
class StagedBackup:
    """One sandbox's backup in this run's staging area (or why it failed)."""

    RETIRED_FIELDS = ('started',)  # written by releases that started stopped sandboxes for their backup

    name: str
    timestamp: str
    staged: str | None
    dest: str | None
    error: str | None = None
    bytes: int = 0
    files: int = 0
    dirs: int = 0
    empty: bool = False  # none of the agent's state dirs or files exist in the sandbox
    # Phase (Stopped or Error) of a sandbox read from its stopped container, never started;
    # None: it was running. (Older journals carry `started` instead: ignored when loaded.)
    phase: str | None = None
    # Seconds the sandbox was frozen (Docker pause) while its state was read; None: not frozen.
    frozen_seconds: float | None = None
    scope: str = "agent"

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.frozen
class NotBackedUp:
    sandbox: str
    reason: str


@attrs.frozen
class Snapshot:
    """What the snapshot step staged, and the registered sandboxes it skipped."""

    backups: list[StagedBackup]
    skipped: list[NotBackedUp]


@attrs.frozen
class BackedUp:

    RETIRED_FIELDS = ('started_and_returned',)  # written by releases that started stopped sandboxes for their backup
    sandbox: str
    path: str
    timestamp: str
    bytes: int
    files: int
    empty: bool = False
    scope: str = "agent"
    frozen_seconds: float | None = None
    phase: str | None = None  # Stopped or Error: read from its stopped container, not started


@attrs.frozen
class BackupReport:

    RETIRED_FIELDS = ('started_and_returned',)  # written by releases that started stopped sandboxes for their backup
    backed_up: list[BackedUp]
    failed: list[NotBackedUp]
    skipped: list[NotBackedUp]


@attrs.frozen
class RebuildPlan:
    name: str
    agent: str
    current: str | None
    expected: str | None
    previous_image: str
    target_image: str
    # Recreate from an existing backup (the sandbox is absent): no backup, no delete.
    from_backup: str | None = None
    # Stopped or Error: backed up from its stopped container; a Stopped one is stopped again after.
    phase: str | None = None


@attrs.frozen
class VersionRow:
    sandbox: str
    current: str | None
    expected: str | None
    running: bool
    phase: str | None = None  # Stopped or Error: judged and rebuilt without being started


@attrs.frozen
class MissingSandbox:
    """Registered, but the gateway does not list it."""

    sandbox: str
    backup: str | None = None  # the latest verified backup's directory
    held_by: str | None = None  # an interrupted run that was working on it


@attrs.frozen
class PinnedSandbox:
    """Onboarded from `repository@sha256:<digest>`: listed, never rebuilt automatically."""

    sandbox: str
    repository: str
    digest: str  # `sha256:<hex>`


@attrs.frozen
class RefusedSandbox:
    """A registry row that cannot be acted on, and why (an error for that sandbox)."""

    sandbox: str
    problem: str


@attrs.frozen
class VersionReport:
    stale: list[VersionRow]
    unknown: list[VersionRow]
    current: list[str]
    missing: list[MissingSandbox] = attrs.Factory(list)
    pinned: list[PinnedSandbox] = attrs.Factory(list)
    refused: list[RefusedSandbox] = attrs.Factory(list)


@attrs.frozen
class RebuildSummary:
    rebuilt: list[str]
    failed: list[str]


declare("registry", list[SandboxEntry], "The registered sandboxes of every registry root (~/.nemoclaw), in registry order.")
declare("cli_version", str | None, "The installed openshell CLI's version, as the preflight found it.")
declare("sandbox_list", SandboxList, "The sandboxes OpenShell lists, by phase, with their ids.")
declare("backup_targets", list[str], "The sandboxes a backup must cover (a rebuild's one sandbox).")
declare("snapshot", Snapshot, "Backups in this run's staging area (each complete or failed), and the skipped sandboxes.")
declare("committed", dict[str, str], "Backups committed by this run: sandbox -> backup directory.")
declare("backup_report", BackupReport, "What backup-all backed up, failed and skipped.", report=True)
declare("rebuild_plan", RebuildPlan, "The sandbox a rebuild works on, its previous and target images.")
declare("sandbox_deleted", bool, "The rebuild deleted the old sandbox.")
declare("version_report", VersionReport, "Stale, unknown, current and missing sandboxes.", report=True)
declare("to_rebuild", list[str], "The sandboxes chosen for a rebuild.")
declare("item_results", dict[str, ItemResult], "Per-item results of a foreach state.")
declare("rebuild_summary", RebuildSummary, "Rebuilt and failed sandboxes of an upgrade.", report=True)
