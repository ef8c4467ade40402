"""`nemoclaw backups list|verify|restore|prune`: what backup-all committed, and using it.

Read-only commands (list, verify) take no lock; restore and prune change state, so they hold
the single-writer lock like a workflow run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from .engine.events import new_run_id
from .engine.output import Reporter
from .paths import Paths
from .store import Backup, BackupStore, RestoreError, StoreError, restore_backup
from .store.errors import LockHeld
from .store.lock import WriterLock


def _store() -> BackupStore:
    return BackupStore(Paths.from_env().backups_root)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _select(store: BackupStore, name: str | None) -> list[Backup]:
    try:
        return store.list(name)
    except StoreError as exc:
        _fail(f"  {exc}", 2)


@contextmanager
def _locked() -> Iterator[None]:
    paths = Paths.from_env()
    try:
        lock = WriterLock(paths.lock_file, new_run_id()).acquire()
    except LockHeld as exc:
        _fail(f"  {exc}", exc.exit_code)
    if lock.broken is not None:
        click.echo(lock.broken.message)
    try:
        yield
    finally:
        lock.release()


@click.group("backups")
def backups_group() -> None:
    """Inspect, verify, restore and prune committed backups (~/.nemoclaw/rebuild-backups/)."""


@backups_group.command("list")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_cmd(name: str | None, as_json: bool) -> None:
    """List backups (of sandbox NAME), newest first. VERIFIED is a quick check: every file is
    present with its manifest size (use `backups verify` to re-hash)."""
    store = _store()
    try:
        listing = store.scan(name)
    except StoreError as exc:
        _fail(f"  {exc}", 2)
    rows: list[dict[str, Any]] = []
    for b in listing.backups:
        quick = store.verify(b, sample_pct=0.0001)
        rows.append({
            "sandbox": b.sandbox, "timestamp": b.timestamp, "version": b.label, "files": len(b.manifest.files),
            "bytes": sum(f.size for f in b.manifest.files), "verified": quick is None,
            "problem": None if quick is None else str(quick), "path": str(b.path),
        })
    if as_json:
        click.echo(json.dumps({"backups": rows, "invalid": [{"path": str(i.path), "error": i.error} for i in listing.invalid]}, indent=2))
        return
    if not rows:
        click.echo("  No backups found." if name is None else f"  No backups of '{name}' found.")
    else:
        _table(["SANDBOX", "TIMESTAMP", "VER", "FILES", "SIZE", "VERIFIED"],
               [[r["sandbox"], r["timestamp"], r["version"], str(r["files"]), _human(r["bytes"]), "yes" if r["verified"] else "NO"] for r in rows])
    for i in listing.invalid:
        click.echo(f"  Ignored {i.path}: {i.error}", err=True)


def _table(header: list[str], rows: list[list[str]]) -> None:
    """A plain aligned table: the same text on a terminal and in a pipe."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in [header, *rows]:
        click.echo("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


@backups_group.command("verify")
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Verify every backup, not only the newest of each sandbox.")
@click.option("--sample", type=click.FloatRange(0, 100, min_open=True), help="Re-hash only this percentage of files.")
def verify_cmd(name: str | None, all_: bool, sample: float | None) -> None:
    """Re-hash backups against their manifests; exit 1 at the first mismatch."""
    store = _store()
    backups = _select(store, name)
    if not all_:
        newest: dict[str, Backup] = {}
        for b in backups:
            newest.setdefault(b.sandbox, b)
        backups = list(newest.values())
    if not backups:
        _fail("  No backups to verify." if name is None else f"  No backups of '{name}' found.")
    for b in backups:
        mismatch = store.verify(b, sample_pct=sample)
        if mismatch is not None:
            _fail(f"  ✗ {b.sandbox} {b.timestamp}: {mismatch}\n    ({b.path})")
        click.echo(f"  ✓ {b.sandbox} {b.timestamp}: {len(b.manifest.files)} files match the manifest")


@backups_group.command("restore")
@click.argument("name")
@click.option("--from", "timestamp", help="Restore this backup (a timestamp from `backups list`); default: the newest.")
@click.option("--dry-run", is_flag=True, help="Say what would be restored; change nothing.")
def restore_cmd(name: str, timestamp: str | None, dry_run: bool) -> None:
    """Write a backup back into sandbox NAME's container, then check the sandbox's files hash
    to the manifest."""
    from .sandbox_containers import find_sandbox_container, manifest_at_root
    from .engine.errors import StepError

    store = _store()
    backups = _select(store, name)
    chosen = next((b for b in backups if timestamp is None or b.timestamp == timestamp), None)
    if chosen is None:
        _fail(f"  No backup of '{name}'" + (f" with timestamp {timestamp}." if timestamp else "."), 1)
    mismatch = store.verify(chosen)
    if mismatch is not None:
        _fail(f"  Refusing to restore a damaged backup: {mismatch} ({chosen.path})")
    names = ", ".join(chosen.manifest.backed_up_dirs + [s.path for s in chosen.manifest.state_files])
    if dry_run:
        click.echo(f"  Would restore {chosen.timestamp} ({len(chosen.manifest.files)} files: {names}) into '{name}' at {chosen.manifest.dir}.")
        return
    with _locked():
        try:
            container = find_sandbox_container(name)
        except StepError as exc:
            _fail(f"  Cannot restore '{name}': {exc}")
        out = Reporter()
        out.line(f"  Restoring {chosen.timestamp} into '{name}' ({len(chosen.manifest.files)} files)...")
        try:
            result = restore_backup(container, chosen.path, manifest_at_root(chosen.manifest, container))
        except (RestoreError, StoreError) as exc:
            _fail(f"  ✗ Restore of '{name}' failed: {exc}")
        if not result.ok:
            _fail(f"  ✗ Restored files of '{name}' do not match the backup: {result.mismatch}")
        out.line(f"  ✓ Restored '{name}' from {chosen.timestamp}; {result.files} files verified in the sandbox.")


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
            with _locked():
                run()
    except StoreError as exc:
        _fail(f"  {exc}", 2)
