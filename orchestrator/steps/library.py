"""The built-in steps' signatures, and the module implementing each (engine/registry.py,
`declare`). The loader checks every workflow against these without importing any step's code;
a step's module is imported when a run first enters one of its states, so a refusal by the
preflight never imports the backup, rebuild or upgrade code. Each module's `@implements(name)`
must match the module named here (a mismatch fails at import). What each fact is:
steps/facts.py.
"""

from __future__ import annotations

from ..engine.registry import declare

_PKG = __name__.rpartition(".")[0]
REGISTRY, PREFLIGHT, SANDBOX_LIST = f"{_PKG}.registry", f"{_PKG}.preflight", f"{_PKG}.sandbox_list"
BACKUP, REBUILD, UPGRADE, CONTROL = f"{_PKG}.backup", f"{_PKG}.rebuild", f"{_PKG}.upgrade", f"{_PKG}.control"
REPLICATE, STORE_OPS = f"{_PKG}.replicate", f"{_PKG}.store_ops"

declare("read_registry", REGISTRY, outcomes=("next", "empty"), local=True, params={"empty_message": str, "empty_ok_with": str},
        writes=("registry",))
declare("preflight", PREFLIGHT, outcomes=("next",), refuses=True, writes=("cli_version",))
declare("sandbox_list", SANDBOX_LIST, outcomes=("next",), refuses=True, params={"recover": bool},
        may_read=("cli_version",), writes=("sandbox_list",))
declare("fail", CONTROL, outcomes=(), local=True, params={"message": str, "exit_code": int})

declare("unpause_leftovers", BACKUP, mutates=True)
declare("snapshot", BACKUP, reads=("registry", "sandbox_list"), may_read=("backup_targets",), writes=("snapshot",),
        mutates=True)
declare("commit_backups", BACKUP, outcomes=("next", "partial"), commits=True, params={"quiet_summary": bool},
        reads=("snapshot",), writes=("committed", "backup_report"))

declare("rebuild_target", REBUILD, outcomes=("next", "from_backup"), reads=("registry", "sandbox_list"),
        writes=("rebuild_plan", "backup_targets"))
declare("delete_sandbox", REBUILD, reads=("rebuild_plan",), may_read=("registry",), writes=("sandbox_deleted",),
        mutates=True)
declare("create_sandbox", REBUILD, reads=("rebuild_plan",), may_read=("registry",), mutates=True)
declare("wait_ready", REBUILD, params={"timeout": float}, reads=("rebuild_plan",))
declare("restore_sandbox", REBUILD, reads=("rebuild_plan",), may_read=("committed", "registry"), mutates=True)
declare("verify_rebuild", REBUILD, reads=("rebuild_plan",), may_read=("committed",))
declare("record_version", REBUILD, reads=("rebuild_plan",), may_read=("registry",), mutates=True)
declare("return_to_stopped", REBUILD, reads=("rebuild_plan",), mutates=True)
declare("rollback_rebuild", REBUILD, outcomes=("unrecovered",), params={"timeout": float}, reads=("rebuild_plan",),
        may_read=("committed", "sandbox_deleted", "registry"), mutates=True)

declare("classify_versions", UPGRADE, outcomes=("next", "current", "checked", "attention"),
        reads=("registry", "sandbox_list"), writes=("version_report",))
declare("confirm_rebuilds", UPGRADE, outcomes=("next", "none"), reads=("version_report",), writes=("to_rebuild",))
declare("rebuild_report", UPGRADE, outcomes=("next", "partial"), reads=("item_results",), may_read=("version_report",),
        writes=("rebuild_summary",))

# Off-host copies in the restic repository NEMOCLAW_BACKUP_REPOSITORY (steps/replicate.py).
declare("replicate_backups", REPLICATE, outcomes=("next", "incomplete"), may_read=("committed",),
        writes=("replication",), mutates=True)
declare("pull_backup", REPLICATE, commits=True, params={"sandbox": str, "timestamp": str, "host": str},
        writes=("pulled",))

# The local backup store, as `nemoclaw backups prune|verify|restore` (steps/store_ops.py). The comment above each
# is its summary (the docs' step table row).
# Keep the `keep` newest backups of each sandbox (of `sandbox`) and remove the rest, never a sandbox's newest backup
# that verifies; fails, after pruning, when a kept backup is damaged. Needs the run's writer lock.
declare("prune_backups", STORE_OPS, params={"keep": int, "sandbox": str}, writes=("prune_report",), mutates=True)
# Re-hash the newest backup of each sandbox (of `sandbox`; every backup with `all`; a `sample` percentage of files)
# against its manifest; fails naming each damaged or invalid backup, or when there is none.
declare("verify_backups", STORE_OPS, params={"sandbox": str, "all": bool, "sample": float}, local=True,
        writes=("verify_report",))
# Write backup `timestamp` (default `latest`: the newest, refused when it is invalid) of `sandbox` (default `{name}`)
# into that running sandbox, checked against its registry identity, and read every file back. Needs the writer lock.
declare("restore_backup", STORE_OPS, params={"sandbox": str, "timestamp": str}, mutates=True)
