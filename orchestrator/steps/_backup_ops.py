"""Verifying and restoring committed backups, written once for the two ways a user asks for it:
the commands `nemoclaw backups verify|restore` (cli/backups.py) and the workflow steps
`verify_backups`, `restore_backup` (steps/store_ops.py). Which backup a restore means, what
makes it refuse, how the sandbox is found and checked, and what counts as a restored sandbox
are decided here; the callers only word the outcome for where they are (a command's flags, a
workflow's `with:`) and show progress. Pruning is the store's own `BackupStore.prune`.

Errors are StepError, with one sentence and no indentation; the commands print them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from ..adapters.agents.definitions import load_agent
from ..kernel.errors import StepError, StoreError
from ..kernel.paths import Paths
from ..store import (LATEST, Backup, BackupStore, InvalidBackup, Listing, PruneResult, RestoreError, RestoreResult,
                     restore_backup)

__all__ = ["NotRestorable", "RestoreFailed", "Verified", "choose_for_restore", "open_store", "prune_lines", "restore_into", "restore_target",
           "scan",
           "verify_slots"]


def open_store(paths: Paths) -> BackupStore:
    return BackupStore(paths.backups_root, load_agent)


def scan(store: BackupStore, sandbox: str | None) -> Listing:
    """The store's listing; a symlinked root or sandbox folder, or a bad name, is bad input (exit 2)."""
    try:
        return store.scan(sandbox)
    except StoreError as exc:
        raise StepError(str(exc), exit_code=2) from None


class NotRestorable(StepError):
    """The backup a restore means is absent, invalid or damaged: nothing was changed.
    `fallback` is the newest valid backup when the newest one was asked for and is invalid
    (the caller says how to ask for it: never taken silently)."""

    def __init__(self, message: str, fallback: Backup | None = None) -> None:
        super().__init__(message, exit_code=1)
        self.fallback = fallback


class RestoreFailed(StepError):
    """Writing the backup into the sandbox failed, or what was written does not read back as the
    backup (the sandbox's restored directories may be half written: a restore again repairs them)."""


def choose_for_restore(store: BackupStore, name: str, timestamp: str | None) -> Backup:
    """The backup of `name` named `timestamp` (None or `latest`: the newest), re-hashed against
    its manifest. NotRestorable when there is none, or it is invalid or damaged."""
    listing = scan(store, name)
    slot = listing.slot(name, timestamp)
    newest = timestamp is None or timestamp == LATEST
    if slot is None:
        raise NotRestorable(f"No backup of '{name}'" + ("." if newest else f" with timestamp {timestamp}."))
    if isinstance(slot, InvalidBackup):
        which = "its newest backup" if newest else "backup"
        raise NotRestorable(f"Refusing to restore '{name}': {which} {slot.timestamp} is invalid: {slot.error}",
                            listing.newest_valid(name) if newest else None)
    mismatch = store.verify(slot)
    if mismatch is not None:
        raise NotRestorable(f"Refusing to restore a damaged backup: {mismatch} ({slot.path})")
    return slot


def restore_target(name: str, *, paths: Paths, rerun: str, recreated: bool = False, recreated_hint: str = "",
                   on_note: Callable[[str], None] = lambda _line: None) -> Any:
    """The running container of sandbox `name`, checked to be the sandbox its registry row names
    (its identity fingerprint, when recorded): a restore never writes into another one. With
    `recreated` (a person recreated it by hand) the row follows the live sandbox instead, and
    `on_note` gets the line saying so. `rerun` is the command a person runs again once a
    stopped sandbox is started; `recreated_hint` is added to an identity mismatch. StepError
    when it cannot be restored into; nothing was changed then."""
    from ..adapters.sandbox_containers import find_sandbox_container

    try:
        container = find_sandbox_container(name)
    except StepError as exc:
        raise StepError(f"Cannot restore '{name}': {_why_not_running(name, rerun) or str(exc).strip()}") from None
    _check_identity(name, paths, recreated=recreated, hint=recreated_hint, on_note=on_note)
    return container


def restore_into(container: Any, name: str, backup: Backup, *, on_progress: Callable[[int, int], None] | None = None,
                 on_read_back: Callable[[int, int], None] | None = None) -> RestoreResult:
    """Write `backup` into `container` (restore_target's) and read every restored file back
    against the manifest. Idempotent: each restored directory is emptied first, so restoring
    again after a kill makes it equal to the backup. RestoreFailed when the write or the
    read-back failed (the restored directories may be half written)."""
    from ..adapters.sandbox_containers import data_root

    try:
        result = restore_backup(container, backup.path, backup.manifest, data_root=data_root(container),
                                agents=load_agent, on_progress=on_progress, on_read_back=on_read_back)
    except (RestoreError, StoreError) as exc:
        raise RestoreFailed(f"Restore of '{name}' failed: {exc}") from None
    if not result.ok:
        raise RestoreFailed(f"Restored files of '{name}' do not match the backup: {result.mismatch}")
    return result


def _check_identity(name: str, paths: Paths, *, recreated: bool, hint: str, on_note: Callable[[str], None]) -> None:
    """The live sandbox must be the one its registry row names (docs/reference/nemoclaw-registry.md):
    a restore never writes into another one. With `recreated` the row's fingerprint follows the
    live sandbox instead."""
    from ..adapters.nemoclaw_registry import IdentityMismatch, check_identity, follow_identity, read_all
    from .registry import live_id

    try:
        entry = next((e for e in read_all(paths.nemoclaw_dir) if e.name == name), None)
        if entry is None or entry.fingerprint is None:
            return
        current = live_id(name)
        if recreated and current is not None:
            if follow_identity(entry, current, nemoclaw_dir=paths.nemoclaw_dir):
                on_note(f"Recorded the recreated sandbox's id {current} as '{name}''s registry identity.")
            return
        check_identity(entry, current)
    except IdentityMismatch as exc:
        raise StepError(str(exc).strip() + hint, kind="identity", exit_code=1) from None
    except StepError as exc:
        raise StepError(str(exc).strip(), kind=exc.kind, exit_code=exc.exit_code or 1) from None


def _why_not_running(name: str, rerun: str) -> str | None:
    """For a sandbox whose container exists but is not running: what it is and what to do (a
    restore runs commands in the container, which needs it running)."""
    from ..adapters.sandbox_containers import find_sandbox_container

    try:
        c = find_sandbox_container(name, running=False, ask_gateway=False)
    except StepError:
        return None
    return f"its container {c.name} is {c.status}; start the sandbox, then rerun: {rerun}"


@attrs.frozen
class Verified:
    """One backup slot a verify looked at, and what is wrong with it (None: it matches)."""

    slot: Backup | InvalidBackup
    problem: str | None
    path: Path

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_slots(store: BackupStore, sandbox: str | None, *, every: bool = False,
                 sample: float | None = None) -> list[Verified]:
    """Re-hash the newest backup of each sandbox (of `sandbox`), or with `every` every backup,
    against its manifest (`sample`: only that percentage of files re-hashed, every file's
    presence and size checked). An invalid slot is a problem too; each is named, the others are
    still verified. StepError when there is nothing to verify."""
    listing = scan(store, sandbox)
    targets = listing.to_verify(every=every)
    if not targets:
        raise StepError("No backups to verify." if sandbox is None else f"No backups of '{sandbox}' found.",
                        exit_code=1)
    found: list[Verified] = []
    for t in targets:
        if isinstance(t, InvalidBackup):
            found.append(Verified(t, f"invalid backup: {t.error}", t.path))
            continue
        mismatch = store.verify(t, sample_pct=sample)
        found.append(Verified(t, None if mismatch is None else str(mismatch), t.path))
    return found


def prune_lines(result: PruneResult) -> list[tuple[str, bool]]:
    """What a prune did, one (line, is_problem) per backup it removed, kept as the newest that
    verifies, or found damaged, then the count (a problem goes to stderr)."""
    verb = "Would remove" if result.dry_run else "Removed"
    lines = [(f"{verb} {b.sandbox} {b.timestamp}", False) for b in result.removed]
    lines += [(f"Kept {b.sandbox} {b.timestamp}: the newest backup that verifies", False) for b in result.protected]
    lines += [(f"Damaged: {b.sandbox} {b.timestamp}: {mismatch}", True) for b, mismatch in result.failed_verify]
    lines.append((f"{verb} {len(result.removed)} backup(s), kept {len(result.kept)}.", False))
    return lines
