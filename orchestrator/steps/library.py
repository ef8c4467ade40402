"""The built-in steps' signatures, and the module implementing each (engine/registry.py,
`declare`). The loader checks every workflow against these without importing any step's code;
a step's module is imported when a run first enters one of its states, so a refusal by the
preflight never imports the backup, rebuild or upgrade code. Each module's `@implements(name)`
must match the module named here (a mismatch fails at import). What each fact is:
steps/facts.py.
"""

from __future__ import annotations

from ..engine.registry import declare
from ..workflow.signature import StepOption

_PKG = __name__.rpartition(".")[0]
REGISTRY, PREFLIGHT, SANDBOX_LIST = f"{_PKG}.registry", f"{_PKG}.preflight", f"{_PKG}.sandbox_list"
BACKUP, REBUILD, UPGRADE, CONTROL = f"{_PKG}.backup", f"{_PKG}.rebuild", f"{_PKG}.upgrade", f"{_PKG}.control"
REPLICATE = f"{_PKG}.replicate"

# The workflow options the steps read (ctx.option): a workflow that does not declare one gives
# the step this default; one that declares it must give it this type.
PARALLEL = StepOption(int, 4, "Back up this many sandboxes at once.")
SCOPE = StepOption(str, "home", "What a backup holds: home, the whole sandbox home minus runtime files; agent, "
                   "only the agent's declared state dirs and files.", choices=("home", "agent"))
NO_FREEZE = StepOption(bool, False, "Do not freeze (Docker pause) each sandbox while its state is read.")
STRICT = StepOption(bool, False, "Commit nothing and exit 1 unless every registered sandbox was backed up "
                    "(also NEMOCLAW_REQUIRE_ALL_SANDBOX_BACKUPS=1).")
REPLICATE_MODE = StepOption(str, "required", "With NEMOCLAW_BACKUP_REPOSITORY set: required, a backup not copied "
                            "off-host ends the run incomplete; best-effort, it warns and goes on.",
                            choices=("required", "best-effort"))
SANDBOX_NAME = StepOption(str, None, "The sandbox to rebuild.", required=True)
IMAGE = StepOption(str, None, "Recreate from this image (default the sandbox's image tagged with the expected agent "
                   "version).")
FROM_BACKUP = StepOption(str, None, "Recreate an absent sandbox from this backup ('latest' or a backup's timestamp).")
CHECK = StepOption(bool, False, "Only report (the workflow's read-only option).")
YES = StepOption(bool, False, "Skip confirmation prompts.")
AUTO = StepOption(bool, False, "Rebuild stale sandboxes without asking.")

declare("read_registry", REGISTRY, outcomes=("next", "empty"), local=True, params={"empty_message": str},
        writes=("registry",))
declare("preflight", PREFLIGHT, outcomes=("next",), refuses=True, writes=("cli_version",))
declare("sandbox_list", SANDBOX_LIST, outcomes=("next",), refuses=True, params={"recover": bool},
        may_read=("cli_version",), writes=("sandbox_list",))
declare("fail", CONTROL, outcomes=(), local=True, params={"message": str, "exit_code": int})

declare("unpause_leftovers", BACKUP, mutates=True)
declare("snapshot", BACKUP, reads=("registry", "sandbox_list"), may_read=("backup_targets",), writes=("snapshot",),
        mutates=True, options={"parallel": PARALLEL, "scope": SCOPE, "no_freeze": NO_FREEZE, "strict": STRICT})
declare("commit_backups", BACKUP, outcomes=("next", "partial"), commits=True, params={"quiet_summary": bool},
        reads=("snapshot",), writes=("committed", "backup_report"), options={"strict": STRICT})

declare("rebuild_target", REBUILD, outcomes=("next", "from_backup"), reads=("registry", "sandbox_list"),
        writes=("rebuild_plan", "backup_targets"),
        options={"name": SANDBOX_NAME, "image": IMAGE, "from_backup": FROM_BACKUP})
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
        reads=("registry", "sandbox_list"), writes=("version_report",), options={"check": CHECK})
declare("confirm_rebuilds", UPGRADE, outcomes=("next", "none"), reads=("version_report",), writes=("to_rebuild",),
        options={"yes": YES, "auto": AUTO})
declare("rebuild_report", UPGRADE, outcomes=("next", "partial"), reads=("item_results",), may_read=("version_report",),
        writes=("rebuild_summary",))

# Off-host copies in the restic repository NEMOCLAW_BACKUP_REPOSITORY (steps/replicate.py).
declare("replicate_backups", REPLICATE, outcomes=("next", "incomplete"), may_read=("committed",),
        writes=("replication",), mutates=True, options={"replicate": REPLICATE_MODE})
declare("pull_backup", REPLICATE, commits=True, params={"sandbox": str, "timestamp": str, "host": str},
        writes=("pulled",))
