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
REPLICATE = f"{_PKG}.replicate"

declare("read_registry", REGISTRY, outcomes=("next", "empty"), local=True, params={"empty_message": str},
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
declare("create_sandbox", REBUILD, reads=("rebuild_plan",), mutates=True)
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

# migrate-openshell: the OpenShell 0.0.x -> 0.1.x migration (steps/migrate.py, facts in steps/migrate_facts.py).
MIGRATE = f"{_PKG}.migrate"
declare("migration_phase", MIGRATE,
        outcomes=("next", "delete", "waiting", "announced", "finish", "abort", "none", "attention"),
        reads=("cli_version", "registry"))
declare("record_migration_plan", MIGRATE, reads=("registry", "sandbox_list", "committed", "cli_version"), mutates=True)
declare("confirm_migration", MIGRATE, outcomes=("next", "declined"), mutates=True)
declare("delete_for_migration", MIGRATE, may_read=("registry",), mutates=True)
declare("migration_items", MIGRATE, outcomes=("next", "none"), may_read=("sandbox_list",), writes=("to_migrate",),
        mutates=True)
declare("migration_target", MIGRATE, outcomes=("next", "already"), writes=("rebuild_plan", "committed"))
declare("record_migrated", MIGRATE, reads=("rebuild_plan",), may_read=("registry",), mutates=True)
declare("migration_report", MIGRATE, outcomes=("next", "partial"), may_read=("item_results",),
        writes=("migration_report",), mutates=True)
