"""Every built-in fact, on one page: the data contract between the built-in steps.

Each `declare` returns the fact's typed handle (`SANDBOX_LIST` is a `Fact[SandboxList]`): a step
reads `ctx.get(SANDBOX_LIST)` and a type checker sees a `SandboxList`. Which steps write and
read each fact is in their signatures (steps/library.py); the fact table in docs/workflows.md
is generated from both (`nemoclaw workflows docs --write docs`). Values are attrs records or
plain types, so the one cattrs converter (engine/facts.py) can round-trip them through the journal.
"""

from __future__ import annotations

import attrs

from ..engine.facts import Fact, declare
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


REGISTRY = declare("registry", list[SandboxEntry], "The registered sandboxes of every registry root (~/.nemoclaw), in registry order.")
CLI_VERSION: Fact[str | None] = declare("cli_version", str | None, "The installed openshell CLI's version, as the preflight found it.")
SANDBOX_LIST = declare("sandbox_list", SandboxList, "The sandboxes OpenShell lists, by phase, with their ids.")
BACKUP_TARGETS = declare("backup_targets", list[str], "The sandboxes a backup must cover (a rebuild's one sandbox).")
SNAPSHOT = declare("snapshot", Snapshot, "Backups in this run's staging area (each complete or failed), and the skipped sandboxes.")
COMMITTED = declare("committed", dict[str, str], "Backups committed by this run: sandbox -> backup directory.")
BACKUP_REPORT = declare("backup_report", BackupReport, "What backup-all backed up, failed and skipped.", report=True)
REBUILD_PLAN = declare("rebuild_plan", RebuildPlan, "The sandbox a rebuild works on, its previous and target images.")
SANDBOX_DELETED = declare("sandbox_deleted", bool, "The rebuild deleted the old sandbox.")
VERSION_REPORT = declare("version_report", VersionReport, "Stale, unknown, current and missing sandboxes.", report=True)
TO_REBUILD = declare("to_rebuild", list[str], "The sandboxes chosen for a rebuild.")
ITEM_RESULTS = declare("item_results", dict[str, ItemResult], "Per-item results of a foreach state.")
REBUILD_SUMMARY = declare("rebuild_summary", RebuildSummary, "Rebuilt and failed sandboxes of an upgrade.", report=True)
