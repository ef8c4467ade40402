"""The committed backups under `~/.nemoclaw/rebuild-backups/<sandbox>/<timestamp>/`.

Listing follows NemoClaw's `listBackups`: every sub-directory with a valid manifest is a backup,
ordered by the manifest timestamp, numbered v1..vN oldest first, returned newest first.
Directories without a valid manifest (NemoClaw leaves empty ones after an early failure) are
reported apart and never touched. Pruning never removes a sandbox's newest backup that
verifies. This module returns data only: printing is the CLI's job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import attrs

from . import _fsutil
from .errors import ManifestError, StoreError
from .manifest import MANIFEST_NAME, Manifest, Mismatch, load_manifest, parse_timestamp, verify

__all__ = ["Backup", "BackupStore", "InvalidBackup", "Listing", "PruneResult", "check_sandbox_name"]

_SANDBOX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


def check_sandbox_name(name: str) -> str:
    """A sandbox name is used as a directory name: refuse anything that could leave the root."""
    if not _SANDBOX_RE.match(name):
        raise StoreError(f"invalid sandbox name {name!r}: use letters, digits, '.', '_' or '-'")
    return name


@attrs.frozen
class Backup:
    sandbox: str
    timestamp: str
    path: Path
    manifest: Manifest
    version: int  # v1 is the oldest backup of the sandbox

    @property
    def label(self) -> str:
        return f"v{self.version}"


@attrs.frozen
class InvalidBackup:
    """A directory that looks like a backup slot but has no valid manifest."""

    path: Path
    error: str


@attrs.frozen
class Listing:
    backups: list[Backup]  # newest first (across sandboxes: by timestamp)
    invalid: list[InvalidBackup]


@attrs.frozen
class PruneResult:
    dry_run: bool
    kept: list[Backup]
    removed: list[Backup]  # or, with dry_run, would be removed
    protected: list[Backup]  # kept beyond `keep` because it is the newest verified backup
    failed_verify: list[tuple[Backup, Mismatch]]  # checked while looking for the newest verified one


@attrs.define
class BackupStore:
    root: Path

    def dest_for(self, sandbox: str, timestamp: str) -> Path:
        """Where a new backup of `sandbox` taken at `timestamp` is committed."""
        if parse_timestamp(timestamp) is None:
            raise StoreError(f"invalid backup timestamp {timestamp!r}")
        return self.root / check_sandbox_name(sandbox) / timestamp

    def sandboxes(self) -> list[str]:
        return [e.name for e in _subdirs(self.root)]

    def scan(self, sandbox: str | None = None) -> Listing:
        backups: list[Backup] = []
        invalid: list[InvalidBackup] = []
        names = [check_sandbox_name(sandbox)] if sandbox is not None else self.sandboxes()
        for name in names:
            found: list[tuple[str, Path, Manifest]] = []
            for entry in _subdirs(self.root / name):
                path = Path(entry.path)
                try:
                    m = load_manifest(path / MANIFEST_NAME)
                except ManifestError as exc:
                    invalid.append(InvalidBackup(path, str(exc)))
                    continue
                if m.sandbox_name != name:
                    invalid.append(InvalidBackup(path, f"manifest names sandbox {m.sandbox_name!r}, not {name!r}"))
                    continue
                found.append((m.timestamp, path, m))
            found.sort(key=lambda t: (parse_timestamp(t[0]), t[1].name))
            for i, (ts, path, m) in enumerate(found, start=1):
                backups.append(Backup(sandbox=name, timestamp=ts, path=path, manifest=m, version=i))
        backups.sort(key=lambda b: (parse_timestamp(b.timestamp), b.sandbox, b.path.name), reverse=True)
        return Listing(backups=backups, invalid=invalid)

    def list(self, sandbox: str | None = None) -> list[Backup]:
        """Valid backups, newest first."""
        return self.scan(sandbox).backups

    def latest(self, sandbox: str) -> Backup | None:
        backups = self.list(sandbox)
        return backups[0] if backups else None

    def verify(self, backup: Backup, sample_pct: float | None = None) -> Mismatch | None:
        return verify(backup.path, backup.manifest, sample_pct)

    def prune(self, keep: int, *, sandbox: str | None = None, dry_run: bool = False) -> PruneResult:
        """Keep the `keep` newest backups of each sandbox and remove the rest, except that the
        newest backup which fully verifies is always kept, even if it is older than those."""
        if keep < 0:
            raise StoreError("keep must be 0 or more")
        kept: list[Backup] = []
        removed: list[Backup] = []
        protected: list[Backup] = []
        failed: list[tuple[Backup, Mismatch]] = []
        for name, backups in _by_sandbox(self.list(sandbox)).items():
            newest_ok: Backup | None = None
            for b in backups:  # newest first
                mismatch = self.verify(b)
                if mismatch is None:
                    newest_ok = b
                    break
                failed.append((b, mismatch))
            for i, b in enumerate(backups):
                if i < keep:
                    kept.append(b)
                elif b == newest_ok:
                    kept.append(b)
                    protected.append(b)
                else:
                    removed.append(b)
            if not dry_run:
                for b in removed:
                    if b.sandbox == name:
                        _fsutil.remove_tree(b.path)
                _sweep_trash(self.root / name)
        return PruneResult(dry_run=dry_run, kept=kept, removed=removed, protected=protected, failed_verify=failed)


def _subdirs(path: Path) -> list[os.DirEntry[str]]:
    """Real (non-symlink) sub-directories, skipping dot-names (`.staging`, `.trash-*`)."""
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        (e for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)),
        key=lambda e: e.name,
    )


def _by_sandbox(backups: Iterable[Backup]) -> dict[str, list[Backup]]:
    out: dict[str, list[Backup]] = {}
    for b in backups:
        out.setdefault(b.sandbox, []).append(b)
    return out


def _sweep_trash(path: Path) -> None:
    """Finish removals an earlier prune was interrupted in."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for e in entries:
        if e.name.startswith(_fsutil.TRASH_PREFIX) and e.is_dir(follow_symlinks=False):
            _fsutil.remove_tree(Path(e.path))
