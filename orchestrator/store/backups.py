"""The committed backups under `~/.nemoclaw/rebuild-backups/<sandbox>/<timestamp>/`.

A backup directory is untrusted input (a user or a script may have edited it). A slot is a
valid backup only if (docs/backups.md, "What a valid backup is"):

- neither the backups root, nor `<sandbox>/`, nor `<timestamp>/`, nor the manifest is a
  symbolic link (nothing below the root is ever followed, by any command);
- the directory name is a backup timestamp, not in the future, and equals the manifest's
  `timestamp`; the manifest's `sandboxName` is the directory's sandbox;
- the manifest loads strictly and describes what its agent declares (`check_against_agent`).

Valid backups are ordered by their directory name, numbered v1..vN oldest first, returned
newest first. Every other slot is reported apart (`Listing.invalid`) and never touched, and
`Listing.newest_slot()` lets a command that defaults to "the newest" refuse when that newest
slot is invalid instead of silently taking an older one. Pruning never removes a sandbox's
newest backup that verifies. This module returns data only: printing is the CLI's job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs

from . import fsops
from .errors import ManifestError, StoreError
from .manifest import MANIFEST_NAME, Manifest, Mismatch, check_against_agent, load_manifest, parse_timestamp, verify

__all__ = ["LATEST", "Backup", "BackupStore", "InvalidBackup", "Listing", "PruneResult", "check_sandbox_name", "refuse_symlink"]

_SANDBOX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
#: The name a command or step gives for "the newest backup".
LATEST = "latest"
#: A backup dated further ahead than this is taken for one made under a wrong clock.
FUTURE_TOLERANCE = timedelta(days=1)


def check_sandbox_name(name: str) -> str:
    """A sandbox name is used as a directory name: refuse anything that could leave the root."""
    if not _SANDBOX_RE.match(name):
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise StoreError(
            f"invalid sandbox name {shown!r}: a backup directory name may use only letters, digits, '.', '_' or '-', "
            "must not start with '.' and must be at most 201 characters"
        )
    return name


def refuse_symlink(path: Path) -> None:
    """NemoClaw's rejectSymlinksOnPath wording, for one path we are about to walk or write."""
    if os.path.islink(path):
        raise StoreError(
            f"Refusing to operate on path: {path} is a symbolic link (target: {os.readlink(path)}). "
            "This may indicate a symlink attack."
        )


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
    """A directory (or link) in a backup slot that is not a valid backup, and why."""

    path: Path
    error: str
    sandbox: str | None = None
    timestamp: str | None = None  # the slot's name when it is a backup timestamp (it can be "newest")


@attrs.frozen
class Listing:
    backups: list[Backup]  # newest first (across sandboxes: by timestamp)
    invalid: list[InvalidBackup]

    def newest_slot(self, sandbox: str) -> Backup | InvalidBackup | None:
        """The newest timestamp-named slot of `sandbox`, valid or not."""
        slots: list[tuple[datetime, str, Backup | InvalidBackup]] = []
        for b in self.backups:
            if b.sandbox == sandbox:
                slots.append((parse_timestamp(b.timestamp), b.timestamp, b))  # type: ignore[arg-type]
        for i in self.invalid:
            when = parse_timestamp(i.timestamp) if i.sandbox == sandbox and i.timestamp else None
            if when is not None:
                slots.append((when, i.timestamp or "", i))
        return max(slots, key=lambda t: (t[0], t[1]))[2] if slots else None

    def newest_valid(self, sandbox: str) -> Backup | None:
        return next((b for b in self.backups if b.sandbox == sandbox), None)

    def sandboxes(self) -> list[str]:
        """Every sandbox with a backup slot, valid or not, sorted."""
        return sorted({b.sandbox for b in self.backups} | {i.sandbox for i in self.invalid if i.sandbox})

    def slot(self, sandbox: str, timestamp: str | None = None) -> Backup | InvalidBackup | None:
        """The slot a restore of `sandbox` means: the one named `timestamp`, or with None (or
        `latest`) the newest one, valid or not (a command refuses an invalid one instead of
        silently taking an older one). None when there is no such slot."""
        if timestamp is None or timestamp == LATEST:
            return self.newest_slot(sandbox)
        return next((b for b in self.backups if b.sandbox == sandbox and b.timestamp == timestamp), None) or next(
            (i for i in self.invalid if i.sandbox == sandbox and i.timestamp == timestamp), None)

    def to_verify(self, *, every: bool = False) -> list[Backup | InvalidBackup]:
        """What a verify checks: the newest slot of each sandbox, or with `every` each valid
        backup and each invalid slot named like a backup (an invalid one is a failure to report)."""
        if every:
            return [*self.backups, *(i for i in self.invalid if i.sandbox and i.timestamp)]
        return [t for t in (self.newest_slot(n) for n in self.sandboxes()) if t is not None]


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
    # agent type -> its definition (an AgentSpec, adapters/agents): every manifest is checked
    # against it. Passed in, so the store imports no adapter.
    agents: Callable[[str], Any]

    def dest_for(self, sandbox: str, timestamp: str) -> Path:
        """Where a new backup of `sandbox` taken at `timestamp` is committed."""
        if parse_timestamp(timestamp) is None:
            raise StoreError(f"invalid backup timestamp {timestamp!r}")
        return self.root / check_sandbox_name(sandbox) / timestamp

    def sandboxes(self) -> list[str]:
        refuse_symlink(self.root)
        return [e.name for e in _subdirs(self.root) if _SANDBOX_RE.match(e.name)]

    def scan(self, sandbox: str | None = None, *, now: datetime | None = None) -> Listing:
        """Every slot of `sandbox` (or of all sandboxes), sorted into valid and invalid.

        Raises StoreError when the backups root, or the named sandbox's folder, is a symlink."""
        now = now or datetime.now(timezone.utc)
        backups: list[Backup] = []
        invalid: list[InvalidBackup] = []
        refuse_symlink(self.root)
        if sandbox is not None:
            names = [check_sandbox_name(sandbox)]
            refuse_symlink(self.root / sandbox)
        else:
            names = []
            for entry in _entries(self.root):
                if entry.is_symlink():
                    invalid.append(InvalidBackup(Path(entry.path), _link_error(entry.path)))
                elif entry.is_dir(follow_symlinks=False):
                    if _SANDBOX_RE.match(entry.name):
                        names.append(entry.name)
                    else:
                        invalid.append(InvalidBackup(Path(entry.path), "not a valid sandbox name; not read"))
        for name in names:
            found: list[tuple[datetime, str, Path, Manifest]] = []
            for entry in _entries(self.root / name):
                path = Path(entry.path)
                when = parse_timestamp(entry.name)
                ts = entry.name if when is not None else None

                def bad(error: str) -> None:
                    invalid.append(InvalidBackup(path, error, sandbox=name, timestamp=ts))

                if entry.is_symlink():
                    bad(_link_error(entry.path))
                    continue
                if not entry.is_dir(follow_symlinks=False):
                    continue  # a stray file is not a slot
                if when is None:
                    bad("the directory name is not a backup timestamp")
                    continue
                try:
                    m = load_manifest(path / MANIFEST_NAME)
                    if m.sandbox_name != name:
                        raise ManifestError(path / MANIFEST_NAME, f"manifest names sandbox {m.sandbox_name!r}, not {name!r}")
                    if m.timestamp != entry.name:
                        raise ManifestError(path / MANIFEST_NAME, f"manifest timestamp {m.timestamp} is not the directory's name")
                    check_against_agent(m, self.agents(m.agent_type), path / MANIFEST_NAME)
                except ManifestError as exc:
                    bad(str(exc))
                    continue
                if when > now + FUTURE_TOLERANCE:
                    bad(f"dated in the future ({entry.name}): taken under a wrong clock? Not used; remove it by hand")
                    continue
                found.append((when, entry.name, path, m))
            found.sort(key=lambda t: (t[0], t[1]))
            for i, (_when, ts_, path, m) in enumerate(found, start=1):
                backups.append(Backup(sandbox=name, timestamp=ts_, path=path, manifest=m, version=i))
        backups.sort(key=lambda b: (parse_timestamp(b.timestamp), b.sandbox, b.path.name), reverse=True)
        return Listing(backups=backups, invalid=invalid)

    def list(self, sandbox: str | None = None) -> list[Backup]:
        """Valid backups, newest first."""
        return self.scan(sandbox).backups

    def verify(self, backup: Backup, sample_pct: float | None = None) -> Mismatch | None:
        return verify(backup.path, backup.manifest, sample_pct)

    def prune(self, keep: int, *, sandbox: str | None = None, dry_run: bool = False,
              on_removed: Callable[[Backup], None] | None = None) -> PruneResult:
        """Keep the `keep` newest backups of each sandbox and remove the rest, except that the
        newest backup which fully verifies is always kept, even if it is older than those.

        Pruning again gives the same result: a prune cut short (killed) removed only backups a
        full one removes, each renamed aside whole first, and the next prune finishes those
        removals (`.trash-*`) in every sandbox folder it looks at, also one left with no backup.
        `on_removed` is called after each removal."""
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
                        fsops.remove_tree(b.path)
                        if on_removed is not None:
                            on_removed(b)
        if not dry_run:
            for name in [check_sandbox_name(sandbox)] if sandbox is not None else self.sandboxes():
                _sweep_trash(self.root / name)
        return PruneResult(dry_run=dry_run, kept=kept, removed=removed, protected=protected, failed_verify=failed)


def _link_error(path: str) -> str:
    return f"is a symbolic link (target: {os.readlink(path)}); never followed"


def _entries(path: Path) -> list[os.DirEntry[str]]:
    """Entries of a folder except dot-names (`.staging`, `.trash-*`, `.paused`), sorted."""
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


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
        if e.name.startswith(fsops.TRASH_PREFIX) and e.is_dir(follow_symlinks=False):
            fsops.remove_tree(Path(e.path))
