"""The backup store: staging and atomic commit, the writer lock, hostile-safe archive
streaming, manifests, the list of committed backups, capture and restore through Docker.

Engine-side usage::

    lock = WriterLock(paths.lock_file, run_id).acquire()     # LockHeld (exit_code 75) if busy
    line = describe_sweep(sweep(paths.staging_root, keep=[run_id]))
    staging = Staging.create(paths.staging_root, run_id)
    ... staging.commit(name, dest) ...
    staging.discard(); lock.release()
"""

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "archive": ('ArchiveResult', 'ProgressCallback', 'extract_stream', 'hash_stream', 'pack_directory'),
    "backups": ('LATEST', 'Backup', 'BackupStore', 'InvalidBackup', 'Listing', 'PruneResult', 'check_sandbox_name', 'refuse_symlink'),
    "capture": ('Capture', 'SpaceBudget', 'build_manifest', 'capture_sandbox', 'check_staged', 'stage_manifest', 'staged_manifest_of'),
    "errors": ('ArchiveError', 'CaptureError', 'LockHeld', 'ManifestError', 'RestoreError', 'StagingError', 'StoreError'),
    "lock": ('BrokenLock', 'WriterLock', 'held_here', 'read_lock'),
    "manifest": ('MANIFEST_NAME', 'Manifest', 'check_against_agent', 'Mismatch', 'StateFile', 'diff_records', 'load_manifest', 'new_timestamp', 'parse_timestamp', 'verify', 'write_manifest'),
    "records": ('DirRecord', 'FileRecord', 'LinkRecord', 'Rejected'),
    "restore": ('RestoreResult', 'read_back', 'restore_backup'),
    "staging": ('Owner', 'Staging', 'SweptRun', 'describe_sweep', 'sweep'),
}  # fmt: skip
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = [name for names in _EXPORTS.values() for name in names]


def __getattr__(name: str) -> Any:
    """Load the submodule that defines `name` on first use (PEP 562): importing one submodule
    (the engine's `store.staging`) must not load them all, for every command's start-up time."""
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .archive import ArchiveResult, ProgressCallback, extract_stream, hash_stream, pack_directory
    from .backups import LATEST, Backup, BackupStore, InvalidBackup, Listing, PruneResult, check_sandbox_name, refuse_symlink
    from .capture import Capture, SpaceBudget, build_manifest, capture_sandbox, check_staged, stage_manifest, staged_manifest_of
    from .errors import ArchiveError, CaptureError, LockHeld, ManifestError, RestoreError, StagingError, StoreError
    from .lock import BrokenLock, WriterLock, held_here, read_lock
    from .manifest import MANIFEST_NAME, Manifest, check_against_agent, Mismatch, StateFile, diff_records, load_manifest, new_timestamp, parse_timestamp, verify, write_manifest
    from .records import DirRecord, FileRecord, LinkRecord, Rejected
    from .restore import RestoreResult, read_back, restore_backup
    from .staging import Owner, Staging, SweptRun, describe_sweep, sweep
