"""`nemoclaw backups list|verify|restore|prune`: what backup-all committed, and using it.

Read-only commands (list, verify) take no lock; restore and prune change state, so they hold
the single-writer lock like a workflow run. A command given, or defaulting to, a backup that
is invalid says so and exits 1: it never silently takes an older one (docs/backups.md).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .echo import fail
from .writer_lock import writer_lock
from .groups import GROUPS

from ..engine.output import Reporter
from ..kernel.paths import Paths
from ..kernel.sizes import human_size
from ..adapters.agents.definitions import load_agent
from ..store import Backup, BackupStore, InvalidBackup, Listing, RestoreError, StoreError, restore_backup


def _store() -> BackupStore:
    return BackupStore(Paths.from_env().backups_root, load_agent)


def _scan(store: BackupStore, name: str | None) -> Listing:
    try:
        return store.scan(name)
    except StoreError as exc:
        fail(f"  {exc}", 2)


def _sandboxes_of(listing: Listing) -> list[str]:
    names = {b.sandbox for b in listing.backups} | {i.sandbox for i in listing.invalid if i.sandbox}
    return sorted(names)


@click.group("backups", help=GROUPS["backups"].help)
def backups_group() -> None:
    pass


@backups_group.command("list")
@click.argument("name", required=False)
@click.option("--verify", "rehash", is_flag=True, help="Re-hash every file (slow); only then does CHECK say verified.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_cmd(name: str | None, rehash: bool, as_json: bool) -> None:
    """List valid backups (of sandbox NAME), newest first. CHECK says what was checked: by
    default that every file is present with its manifest size (`sizes ok`); with --verify every
    file is re-hashed (`verified`). Invalid backup directories are named on stderr."""
    store = _store()
    listing = _scan(store, name)
    rows: list[dict[str, Any]] = []
    for b in listing.backups:
        problem = store.verify(b) if rehash else _sizes_problem(b)
        rows.append({
            "sandbox": b.sandbox, "timestamp": b.timestamp, "version": b.label, "files": len(b.manifest.files),
            "bytes": sum(f.size for f in b.manifest.files),
            "check": "sha256" if rehash else "sizes",  # what was checked
            "ok": problem is None,
            "verified": (problem is None) if rehash else None,  # None: not re-hashed, so not verified
            "problem": None if problem is None else str(problem), "path": str(b.path),
        })
    if as_json:
        click.echo(json.dumps({"backups": rows, "invalid": [{"path": str(i.path), "error": i.error} for i in listing.invalid]}, indent=2))
        return
    if not rows:
        click.echo("  No valid backups found." if name is None else f"  No valid backups of '{name}' found.")
    else:
        def check(r: dict[str, Any]) -> str:
            if rehash:
                return "verified" if r["ok"] else "DAMAGED"
            return "sizes ok" if r["ok"] else "DAMAGED"

        _table(["SANDBOX", "TIMESTAMP", "VER", "FILES", "SIZE", "CHECK"],
               [[r["sandbox"], r["timestamp"], r["version"], str(r["files"]), human_size(r["bytes"]), check(r)] for r in rows])
        if not rehash:
            click.echo("  (sizes checked only; `nemoclaw backups verify` or `list --verify` re-hashes every file)")
    for r in rows:
        if not r["ok"]:  # one line each, naming it: the others are listed all the same
            click.echo(f"  Damaged backup {r['sandbox']} {r['timestamp']}: {r['problem']}", err=True)
    for i in listing.invalid:
        click.echo(f"  Invalid backup {i.path}: {i.error}", err=True)


def _sizes_problem(b: Backup) -> Any:
    """Presence, type and size of every file, dir and link; no file is hashed."""
    from ..store.manifest import verify as verify_tree

    return verify_tree(b.path, b.manifest, hash_files=False)


def _table(header: list[str], rows: list[list[str]]) -> None:
    """A plain aligned table: the same text on a terminal and in a pipe."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in [header, *rows]:
        click.echo("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _invalid_line(i: InvalidBackup) -> str:
    return f"  ✗ {i.sandbox} {i.timestamp}: invalid backup: {i.error}"


@backups_group.command("verify")
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Verify every backup, not only the newest of each sandbox.")
@click.option("--sample", type=click.FloatRange(0, 100, min_open=True), help="Re-hash only this percentage of files.")
def verify_cmd(name: str | None, all_: bool, sample: float | None) -> None:
    """Re-hash backups against their manifests; exit 1 if any is damaged or invalid (each is
    named, the others still verified). Without --all, the newest backup of each sandbox: when
    that one is invalid, it says so."""
    store = _store()
    listing = _scan(store, name)
    targets: list[Backup | InvalidBackup]
    if all_:
        targets = [*listing.backups, *(i for i in listing.invalid if i.sandbox and i.timestamp)]
    else:
        targets = [t for t in (listing.newest_slot(n) for n in _sandboxes_of(listing)) if t is not None]
    if not targets:
        fail("  No backups to verify." if name is None else f"  No backups of '{name}' found.")
    failed = False
    for t in targets:
        if isinstance(t, InvalidBackup):
            click.echo(_invalid_line(t), err=True)
            failed = True
            continue
        mismatch = store.verify(t, sample_pct=sample)
        if mismatch is not None:  # named, and the other backups still verified
            click.echo(f"  ✗ {t.sandbox} {t.timestamp}: {mismatch}\n    ({t.path})", err=True)
            failed = True
            continue
        n = len(t.manifest.files)
        if sample is None:
            click.echo(f"  ✓ {t.sandbox} {t.timestamp}: {n} files match the manifest")
        else:
            click.echo(f"  ✓ {t.sandbox} {t.timestamp}: all {n} files present with their sizes; a {sample:g} % sample re-hashed matches")
    if failed:
        sys.exit(1)


@backups_group.command("restore")
@click.argument("name")
@click.option("--from", "timestamp", help="Restore this backup (a timestamp from `backups list`); default: the newest.")
@click.option("--dry-run", is_flag=True, help="Say what would be restored; change nothing.")
@click.option("--recreated", is_flag=True,
              help="You recreated the sandbox yourself: record its new OpenShell id as its registry identity, then restore.")
def restore_cmd(name: str, timestamp: str | None, dry_run: bool, recreated: bool) -> None:
    """Write a backup back into sandbox NAME's container, then check the sandbox's files hash
    to the manifest. Refuses when the chosen (or newest) backup is invalid or damaged."""
    from ..adapters.sandbox_containers import data_root, find_sandbox_container
    from ..kernel.errors import StepError

    store = _store()
    listing = _scan(store, name)
    if timestamp is None:
        chosen_slot = listing.newest_slot(name)
    else:
        chosen_slot = next((b for b in listing.backups if b.timestamp == timestamp), None) or next(
            (i for i in listing.invalid if i.timestamp == timestamp), None
        )
    if chosen_slot is None:
        fail(f"  No backup of '{name}'" + (f" with timestamp {timestamp}." if timestamp else "."), 1)
    if isinstance(chosen_slot, InvalidBackup):
        which = "its newest backup" if timestamp is None else "backup"
        message = f"  Refusing to restore '{name}': {which} {chosen_slot.timestamp} is invalid: {chosen_slot.error}"
        fallback = listing.newest_valid(name)
        if timestamp is None and fallback is not None:
            message += f"\n  The newest valid backup is {fallback.timestamp}; to restore it, run: nemoclaw backups restore {name} --from {fallback.timestamp}"
        fail(message)
    chosen: Backup = chosen_slot
    mismatch = store.verify(chosen)
    if mismatch is not None:
        fail(f"  Refusing to restore a damaged backup: {mismatch} ({chosen.path})")
    names = ", ".join(chosen.manifest.backed_up_dirs + [s.path for s in chosen.manifest.state_files])
    if dry_run:
        click.echo(f"  Would restore {chosen.timestamp} ({len(chosen.manifest.files)} files: {names}) into '{name}' at {chosen.manifest.dir}.")
        return
    with writer_lock(finish_interrupted=True):
        try:
            container = find_sandbox_container(name)
        except StepError as exc:
            fail(f"  Cannot restore '{name}': {_why_not_running(name) or str(exc).strip()}")
        _check_identity(name, recreated)
        out = Reporter()
        out.line(f"  Restoring {chosen.timestamp} into '{name}' ({len(chosen.manifest.files)} files)...")
        try:
            with out.progress() as progress:  # on a terminal: what is written, then what is read back
                rows = [progress.task(f"Writing '{name}'")]

                def read_back(nbytes: int, files: int) -> None:
                    if len(rows) == 1:  # one row at a time
                        rows[0].done()
                        rows.append(progress.task(f"Reading back '{name}'"))
                    rows[1].update(nbytes, files)

                result = restore_backup(container, chosen.path, chosen.manifest, data_root=data_root(container),
                                        agents=load_agent, on_progress=rows[0].update, on_read_back=read_back)
        except (RestoreError, StoreError) as exc:
            fail(f"  ✗ Restore of '{name}' failed: {exc}")
        if not result.ok:
            fail(f"  ✗ Restored files of '{name}' do not match the backup: {result.mismatch}")
        out.line(f"  ✓ Restored '{name}' from {chosen.timestamp}; {result.files} files verified in the sandbox.")


def _check_identity(name: str, recreated: bool) -> None:
    """The live sandbox must be the one its registry row names (its identity fingerprint, when
    recorded; docs/reference/nemoclaw-registry.md): a restore never writes into another one.
    With `recreated` (the user recreated it by hand, e.g. following a failed rollback's
    commands) the row's fingerprint follows the live sandbox instead."""
    from ..adapters.nemoclaw_registry import IdentityMismatch, check_identity, follow_identity, read_all
    from ..engine.output import failure_text
    from ..kernel.errors import StepError
    from ..steps.registry import live_id

    paths = Paths.from_env()
    try:
        entry = next((e for e in read_all(paths.nemoclaw_dir) if e.name == name), None)
        if entry is None or entry.fingerprint is None:
            return
        current = live_id(name)
        if recreated and current is not None:
            if follow_identity(entry, current, nemoclaw_dir=paths.nemoclaw_dir):
                click.echo(f"  Recorded the recreated sandbox's id {current} as '{name}''s registry identity.")
            return
        check_identity(entry, current)
    except IdentityMismatch as exc:
        fail(f"{failure_text(exc)} If you recreated it yourself, rerun with --recreated.", 1)
    except StepError as exc:
        fail(failure_text(exc), exc.exit_code or 1)


def _why_not_running(name: str) -> str | None:
    """For a sandbox whose container exists but is not running: what it is and what to do (a
    restore runs commands in the container, which needs it running)."""
    from ..adapters.sandbox_containers import find_sandbox_container
    from ..kernel.errors import StepError

    try:
        c = find_sandbox_container(name, running=False, ask_gateway=False)
    except StepError:
        return None
    return (f"its container {c.name} is {c.status}; start the sandbox, then rerun: "
            f"nemoclaw backups restore {name}")


@backups_group.command("prune")
@click.option("--keep", type=click.IntRange(min=0), required=True, help="Keep this many newest backups per sandbox.")
@click.argument("name", required=False)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def prune_cmd(keep: int, name: str | None, dry_run: bool) -> None:
    """Remove all but the KEEP newest backups of each sandbox (of NAME). The newest backup that
    verifies is never removed, even when it is older than those kept."""
    store = _store()

    def run() -> None:
        result = store.prune(keep, sandbox=name, dry_run=dry_run)
        verb = "Would remove" if dry_run else "Removed"
        for b in result.removed:
            click.echo(f"  {verb} {b.sandbox} {b.timestamp}")
        for b in result.protected:
            click.echo(f"  Kept {b.sandbox} {b.timestamp}: the newest backup that verifies")
        for b, mismatch in result.failed_verify:
            click.echo(f"  Damaged: {b.sandbox} {b.timestamp}: {mismatch}", err=True)
        click.echo(f"  {verb} {len(result.removed)} backup(s), kept {len(result.kept)}.")

    try:
        if dry_run:
            run()
        else:
            with writer_lock():
                run()
    except StoreError as exc:
        fail(f"  {exc}", 2)


# The off-host copies (restic): init-remote, push, pull, and --remote of list/prune/verify.
from .backups_remote import register as _register_remote  # noqa: E402

_register_remote(backups_group)
