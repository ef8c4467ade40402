"""The backup store: staging and atomic commit, the writer lock, hostile-safe archive
streaming, manifests, the list of committed backups, capture and restore through Docker.

Engine-side usage::

    lock = WriterLock(paths.lock_file, run_id).acquire()     # LockHeld (exit_code 75) if busy
    line = describe_sweep(sweep(paths.staging_root, keep=[run_id]))
    staging = Staging.create(paths.staging_root, run_id)
    ... staging.commit(name, dest) ...
    staging.discard(); lock.release()
"""

from .agents import DEFAULT_AGENT, AgentSpec, StateFileSpec, agent_names, load_agent, load_agent_file
from .archive import ArchiveResult, ProgressCallback, extract_stream, hash_stream, pack_directory
from .backups import Backup, BackupStore, InvalidBackup, Listing, PruneResult, check_sandbox_name
from .capture import Capture, build_manifest, capture_sandbox, check_staged
from .errors import ArchiveError, LockHeld, ManifestError, RestoreError, StagingError, StoreError
from .lock import BrokenLock, WriterLock, read_lock
from .manifest import (
    MANIFEST_NAME,
    Manifest,
    Mismatch,
    StateFile,
    diff_records,
    load_manifest,
    new_timestamp,
    parse_timestamp,
    verify,
    write_manifest,
)
from .records import DirRecord, FileRecord, LinkRecord, Rejected
from .restore import RestoreResult, read_back, restore_backup
from .staging import Owner, Staging, SweptRun, describe_sweep, sweep

__all__ = [
    "DEFAULT_AGENT", "AgentSpec", "StateFileSpec", "agent_names", "load_agent", "load_agent_file",
    "ArchiveResult", "ProgressCallback", "extract_stream", "hash_stream", "pack_directory",
    "Backup", "BackupStore", "InvalidBackup", "Listing", "PruneResult", "check_sandbox_name",
    "Capture", "build_manifest", "capture_sandbox", "check_staged",
    "ArchiveError", "LockHeld", "ManifestError", "RestoreError", "StagingError", "StoreError",
    "BrokenLock", "WriterLock", "read_lock",
    "MANIFEST_NAME", "Manifest", "Mismatch", "StateFile", "diff_records", "load_manifest",
    "new_timestamp", "parse_timestamp", "verify", "write_manifest",
    "DirRecord", "FileRecord", "LinkRecord", "Rejected",
    "RestoreResult", "read_back", "restore_backup",
    "Owner", "Staging", "SweptRun", "describe_sweep", "sweep",
]  # fmt: skip
