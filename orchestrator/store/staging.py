"""The run's staging area: where snapshots are written before they are committed.

A snapshot becomes visible under `rebuild-backups/` only through one atomic `rename(2)` of a
complete, fsynced directory, so a killed run leaves either nothing or a whole backup there.
What a killed run leaves in staging is removed by `sweep()` at the next start.

Layout: `<staging_root>/<run_id>/.owner.json` plus one directory per staged item.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from ..kernel.owner import Owner as Owner  # also the store's (store/__init__.py)
from ..kernel import atomic
from . import fsops
from .errors import StagingError

OWNER_FILE = ".owner.json"
_TRASH_PREFIX = fsops.TRASH_PREFIX
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
#: How old an area without a readable owner file must be before sweep() takes it for dead.
DEFAULT_GRACE_SECONDS = 3600.0


def _check_name(name: str, what: str) -> str:
    if not _NAME_RE.match(name):
        raise StagingError(f"invalid {what} {name!r}: use letters, digits, '.', '_' or '-' (not starting with '.')")
    return name


@attrs.define
class Staging:
    """One run's staging area. Create with `Staging.create`; `commit` moves finished items into
    place, `discard` drops whatever was not committed."""

    root: Path
    run_id: str
    path: Path
    committed: list[Path] = attrs.field(factory=list)

    @classmethod
    def create(cls, staging_root: Path, run_id: str) -> "Staging":
        _check_name(run_id, "run id")
        # A symlinked backups folder (or staging folder) could send every write elsewhere.
        _refuse_symlinked_ancestors(staging_root, stop_at=staging_root.parent)
        fsops.makedirs_private(staging_root)
        _refuse_symlinked_ancestors(staging_root, stop_at=staging_root.parent)
        path = staging_root / run_id
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            raise StagingError(f"staging area {path} already exists: run ids must be unique") from None
        os.chmod(path, 0o700)
        owner = Owner.current(run_id)
        atomic.write_file_atomic(path / OWNER_FILE, atomic.dump_json(owner.to_json()))
        atomic.fsync_dir(staging_root)
        return cls(root=staging_root, run_id=run_id, path=path)

    def dir_for(self, name: str) -> Path:
        """The staged directory for `name` (e.g. one per sandbox), created 0700 on first use."""
        p = self.path / _check_name(name, "staged name")
        try:
            os.mkdir(p, 0o700)
        except FileExistsError:
            if not p.is_dir() or p.is_symlink():
                raise StagingError(f"staged path {p} is not a directory") from None
        return p

    def fresh_dir(self, name: str) -> Path:
        """The staged directory for `name` emptied (what a read that was given up left there removed)."""
        fsops.remove_tree(self.path / _check_name(name, "staged name"))
        return self.dir_for(name)

    def staged(self) -> list[str]:
        """Names staged and not yet committed."""
        return _staged_names(self.path)

    def sync(self) -> None:
        """Make everything staged so far durable at once (one syncfs for all the sandboxes of a
        run, instead of one per commit): call it after the last write, then `commit(...,
        synced=True)` each item. The guarantee is the same: nothing is renamed into place before
        all its data is on disk."""
        fsops.fsync_tree(self.path)

    def commit(self, name: str, dest: Path, *, synced: bool = False) -> Path:
        """Move the staged directory `name` to `dest` atomically and durably.

        Every file and directory is fsynced before the rename (here, or by `sync()` after the
        last write when `synced`) and both parents after it, so after a crash `dest` is either
        absent or complete. `dest` must not exist and must be on the staging area's filesystem
        (a cross-device move would be a copy, not atomic).
        """
        src = self.path / _check_name(name, "staged name")
        if not src.is_dir() or src.is_symlink():
            raise StagingError(f"nothing staged under {name!r} in {self.path}")
        dest = Path(dest)
        if os.path.lexists(dest):
            raise StagingError(f"refusing to commit {name!r}: {dest} already exists")
        _refuse_symlinked_ancestors(dest.parent, stop_at=self.root.parent)
        fsops.makedirs_private(dest.parent)
        _refuse_symlinked_ancestors(dest.parent, stop_at=self.root.parent)  # re-check after mkdir
        if os.stat(dest.parent).st_dev != os.stat(src).st_dev:
            raise StagingError(
                f"refusing to commit {name!r}: {dest.parent} is on another filesystem than {self.path}"
            )
        if not synced:
            fsops.fsync_tree(src)
        try:
            fsops.rename_noreplace(src, dest)
        except FileExistsError:
            raise StagingError(f"refusing to commit {name!r}: {dest} already exists") from None
        atomic.fsync_dir(dest.parent)
        atomic.fsync_dir(self.path)
        self.committed.append(dest)
        return dest

    def discard(self) -> None:
        """Remove the whole staging area (committed items are elsewhere and stay). Idempotent."""
        fsops.remove_tree(self.path)


def _refuse_symlinked_ancestors(path: Path, stop_at: Path) -> None:
    """Like NemoClaw's rejectSymlinksOnPath: a symlinked directory between the backups root and
    the destination could redirect a commit anywhere, so refuse it."""
    p = path
    stop = Path(stop_at)
    while True:
        if p.is_symlink():  # a missing component is fine: makedirs creates a real directory
            raise StagingError(
                f"Refusing to operate on path: {p} is a symbolic link (target: {os.readlink(p)}). "
                "This may indicate a symlink attack."
            )
        if p == stop or p.parent == p or stop not in p.parents:
            return
        p = p.parent


def _staged_names(area: Path) -> list[str]:
    try:
        entries = sorted(os.scandir(area), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [e.name for e in entries if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]


# --- sweep ------------------------------------------------------------------------------------


@attrs.frozen
class SweptRun:
    """A dead run's staging area that sweep() removed."""

    run_id: str
    path: Path
    staged: tuple[str, ...]
    reason: str  # e.g. "pid 123 is gone", "owner file unreadable and older than 3600 s"
    owner: Owner | None = None


def sweep(
    staging_root: Path,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    keep: Sequence[str] = (),
    now: float | None = None,
) -> list[SweptRun]:
    """Remove staging areas of runs that are no longer alive; return what was removed.

    Call it with the writer lock held (two sweepers would race for the same leftovers). An area
    is dead when its owner file names a process on this host that is gone (or a recycled pid),
    or when the owner file is missing/corrupt and the area is older than `grace_seconds` (a run
    creating its area writes the file right after mkdir). Areas of other hosts are kept.
    Half-removed areas of an interrupted sweep (`.trash-*`) are always finished off.
    """
    now = time.time() if now is None else now
    swept: list[SweptRun] = []
    if os.path.islink(staging_root) or os.path.islink(Path(staging_root).parent):
        return []  # never sweep through a symlink; the run itself refuses it with a sentence
    try:
        entries = sorted(os.scandir(staging_root), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith(_TRASH_PREFIX):
            fsops.remove_tree(path)
            continue
        if not entry.is_dir(follow_symlinks=False) or entry.name in keep:
            continue
        owner, reason = _read_owner(path)
        if owner is not None:
            if owner.is_alive():
                continue
            reason = f"pid {owner.pid} is gone"
        else:
            try:
                age = now - os.lstat(path).st_mtime
            except FileNotFoundError:
                continue
            if age < grace_seconds:
                continue
            reason = f"{reason} and older than {int(grace_seconds)} s"
        staged = tuple(_staged_names(path))
        fsops.remove_tree(path)
        swept.append(SweptRun(run_id=owner.run_id if owner else entry.name, path=path, staged=staged, reason=reason, owner=owner))
    return swept


def _read_owner(area: Path) -> tuple[Owner | None, str]:
    try:
        raw = (area / OWNER_FILE).read_bytes()
    except FileNotFoundError:
        return None, "owner file missing"
    except OSError as exc:
        return None, f"owner file unreadable ({exc.strerror})"
    try:
        return Owner.from_json(json.loads(raw)), ""
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"owner file corrupt ({exc})"


def describe_sweep(swept: Sequence[SweptRun]) -> str | None:
    """The one line a run prints after sweeping, or None if nothing was removed.

    `  Removed leftovers of 1 interrupted run: <run-id> (3 staged dirs)`
    """
    if not swept:
        return None
    n = len(swept)
    parts = ", ".join(f"{s.run_id} ({len(s.staged)} staged dir{'' if len(s.staged) == 1 else 's'})" for s in swept)
    return f"  Removed leftovers of {n} interrupted run{'' if n == 1 else 's'}: {parts}"
