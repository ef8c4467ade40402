"""The built-in steps' signatures, and the module implementing each (engine/registry.py,
`declare`). The loader checks every workflow against these without importing any step's code;
a step's module is imported when a run first enters one of its states, so a refusal by the
preflight never imports the backup, rebuild or upgrade code. Each module's `@implements(name)`
must match the module named here (a mismatch fails at import). What each fact is:
steps/facts.py.

This is the one place the steps' contract is written: the step table and the fact table of
docs/workflows.md are generated from these signatures (`doc=` is a step's notes there) by
`nemoclaw workflows docs --write docs`, and a test fails when they drift.
"""

from __future__ import annotations

from ..engine.registry import declare
from ..workflow.signature import StepOption

_PKG = __name__.rpartition(".")[0]
REGISTRY, PREFLIGHT, SANDBOX_LIST = f"{_PKG}.registry", f"{_PKG}.preflight", f"{_PKG}.sandbox_list"
BACKUP, REBUILD, UPGRADE, CONTROL = f"{_PKG}.backup", f"{_PKG}.rebuild", f"{_PKG}.upgrade", f"{_PKG}.control"
REPLICATE, STORE_OPS = f"{_PKG}.replicate", f"{_PKG}.store_ops"

# The workflow options the steps read (ctx.option): a workflow that does not declare one gives
# the step this default; one that declares it must give it this type.
PARALLEL = StepOption(int, None, "Back up this many sandboxes at once (default: four per core, at most 8; 2 on a "
                      "spinning disk: store/parallelism.py).")
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
# `with:` parameters that have a default.
WAIT_TIMEOUT = StepOption(float, 120.0, "Seconds to wait for the sandbox to be Ready.")

declare("read_registry", REGISTRY, outcomes=("next", "empty"), local=True, params={"empty_message": str, "empty_ok_with": str},
        writes=("registry",), doc="every registry root (default and per gateway port); ends `empty`, printing `empty_message`, when none has a sandbox (not when the option named by `empty_ok_with` is set)")
declare("preflight", PREFLIGHT, outcomes=("next",), refuses=True, guards=True, writes=("cli_version",),
        doc="gateway schema preflight (both drivers, served version); a probe that hung (`NEMOCLAW_OPENSHELL_TIMEOUT`, "
            "docs/reference/deadlines.md) fails the run with the \"could not check\" sentence")
declare("sandbox_list", SANDBOX_LIST, outcomes=("next",), refuses=True,
        params={"recover": StepOption(bool, True, "Recover a gateway that is down (never in a read-only run).")},
        may_read=("cli_version",), writes=("sandbox_list",),
        doc='`openshell sandbox list` with gateway recovery (none with `with: {recover: false}`, nor in a read-only run: it then never selects or starts a gateway); refuses on schema mismatch; retries one transient gRPC failure (`Unavailable`, ...) and shows the gRPC cause of a failure (also in the run log); a list that hangs is killed at the probe bound and fails the run with the "could not check" sentence, never recovered')
declare("fail", CONTROL, outcomes=(), local=True,
        params={"message": StepOption(str, "  The workflow ended in a failure state."), "exit_code": int},
        doc='always fails: ends the run as failed with `message` (and `exit_code`)')

declare("unpause_leftovers", BACKUP, mutates=True,
        doc='unpauses, with a line, any sandbox a killed run left paused (records in `rebuild-backups/.paused/`), before the list would call it not running; then returns to stopped through `openshell sandbox stop`, with a line, any sandbox that a killed run of an older release had started for its backup (its records in `rebuild-backups/.started/`; no new ones are written)')
declare("snapshot", BACKUP, reads=("registry", "sandbox_list"), may_read=("backup_targets",), writes=("snapshot",),
        mutates=True, options={"parallel": PARALLEL, "scope": SCOPE, "no_freeze": NO_FREEZE, "strict": STRICT},
        doc="streams ready sandboxes into staging, `parallel` at once; each sandbox is frozen (Docker pause, recorded first) while it is read unless `no_freeze`, the freeze time goes into the report; `scope` home (the whole home minus the agent's `home_excludes`) or agent (its declared state); a sandbox in phase `Stopped` or `Error` is read from its stopped workload container (selected by sandbox id, never a supervisor), never started, stopped or frozen, and its summary names its phase ([docs/reference/sandbox-lifecycle.md](reference/sandbox-lifecycle.md)); one without a usable container is skipped with upstream's line; one that is not there (not listed, or listed with no container) is reported missing and makes the run incomplete")
declare("commit_backups", BACKUP, outcomes=("next", "partial"), commits=True, params={"quiet_summary": bool},
        reads=("snapshot",), writes=("committed", "backup_report"), options={"strict": STRICT},
        doc='verifies and renames staged backups into place (`partial` when one failed or was missing); with `strict` (or `NEMOCLAW_REQUIRE_ALL_SANDBOX_BACKUPS=1`) nothing is committed and the run fails if any sandbox was skipped or failed; an empty capture is committed with a ⚠ warning')

declare("rebuild_target", REBUILD, outcomes=("next", "from_backup"), reads=("registry", "sandbox_list"),
        writes=("rebuild_plan", "backup_targets"),
        options={"name": SANDBOX_NAME, "image": IMAGE, "from_backup": FROM_BACKUP},
        doc="the sandbox `name` must be registered and running, `Stopped` or `Error` (or absent, with `from_backup`: ends `from_backup`), and its registry identity fingerprint must match its live id; previous and target images (`image`, else a pinned sandbox's own digest, else its image tagged with the expected version); a `Stopped`/`Error` one is backed up from its stopped container (a line says so)")
declare("delete_sandbox", REBUILD, reads=("rebuild_plan",), may_read=("registry",), writes=("sandbox_deleted",),
        mutates=True,
        doc='through `openshell sandbox delete` (never a Docker call on a managed container), after checking the identity fingerprint again; idempotent')
declare("create_sandbox", REBUILD, reads=("rebuild_plan",), may_read=("registry",), mutates=True,
        doc='through `openshell sandbox create` (`--workspace default` on 0.1.x) from the target image; one that already runs it is done; idempotent; with `from_backup` on a host whose registry lacks the sandbox, registers it with the row its backup recorded ([backups.md](backups.md#a-dead-host))')
declare("wait_ready", REBUILD, params={"timeout": WAIT_TIMEOUT}, reads=("rebuild_plan",),
        doc='waits until the sandbox is Ready (`timeout` seconds)')
declare("restore_sandbox", REBUILD, reads=("rebuild_plan",), may_read=("committed", "registry"), mutates=True,
        doc='restores the backup through the Docker API (archives, exec), making each restored directory equal to it again, and moves the registry fingerprint to the recreated sandbox; idempotent')
declare("verify_rebuild", REBUILD, reads=("rebuild_plan",), may_read=("committed",),
        doc='the agent version equals the expected one and the restored files hash equal to the backup')
declare("record_version", REBUILD, reads=("rebuild_plan",), may_read=("registry",), mutates=True,
        doc="writes `agentVersion` into the row's own registry file; idempotent")
declare("return_to_stopped", REBUILD, reads=("rebuild_plan",), mutates=True,
        doc='a sandbox that was `Stopped` before the rebuild is stopped again through `openshell sandbox stop` and must then show `Stopped` in `openshell sandbox get` (NemoClaw #12173); any other is left running; idempotent')
declare("rollback_rebuild", REBUILD, outcomes=("unrecovered",), params={"timeout": WAIT_TIMEOUT}, reads=("rebuild_plan",),
        may_read=("committed", "sandbox_deleted", "registry"), mutates=True,
        doc='never ends `next`: recreates from the previous image and restores the same backup (then fails); if that fails too, prints the manual commands and ends `unrecovered`')

declare("classify_versions", UPGRADE, outcomes=("next", "current", "checked", "attention"),
        reads=("registry", "sandbox_list"), writes=("version_report",), options={"check": CHECK},
        doc="probes running sandboxes' agent version in the container; a `Stopped` or `Error` one is judged without starting it (the registry's `agentVersion`, else its image's version label, else unknown) and shown `(stopped)` or `(stopped; phase Error)`; stale / unknown / current / missing / pinned report (missing: not listed, or listed with no container; a row named unlike its key is an error for that sandbox); `checked` with `check`, `attention` when only missing sandboxes or interrupted runs need doing; a sandbox a killed backup left frozen shows `(frozen by interrupted run <id>)`, one a running backup has frozen `(frozen by run <id> while it is backed up)`, not `(stopped)`")
declare("confirm_rebuilds", UPGRADE, outcomes=("next", "none"), reads=("version_report",), writes=("to_rebuild",),
        options={"yes": YES, "auto": AUTO},
        doc='stale sandboxes that run or are `Stopped`/`Error`, prompting unless `yes`/`auto`; any other (frozen by another run, provisioning) is skipped with a line naming it')
declare("rebuild_report", UPGRADE, outcomes=("next", "partial"), reads=("item_results",), may_read=("version_report",),
        writes=("rebuild_summary",),
        doc='counts rebuilt and failed sandboxes (missing ones count as not done); `partial` when any failed')

# Off-host copies in the restic repository NEMOCLAW_BACKUP_REPOSITORY (steps/replicate.py).
declare("replicate_backups", REPLICATE, outcomes=("next", "incomplete"), may_read=("committed",),
        writes=("replication",), mutates=True, options={"replicate": REPLICATE_MODE},
        doc='with `NEMOCLAW_BACKUP_REPOSITORY` set, pushes each committed backup, and the older valid backups of the same sandboxes, that the restic repository lacks (by manifest digest); without it, nothing; a failure leaves the local backups committed and ends `incomplete` unless `replicate` is `best-effort` ([backups.md](backups.md#off-host-copies))')
declare("pull_backup", REPLICATE, commits=True, params={"sandbox": str, "timestamp": str, "host": str},
        writes=("pulled",),
        doc='restores `with: {sandbox, timestamp, host}` (defaults `{name}`, `latest`, this or the only host) from the restic repository into staging, checks every file against its manifest and commits it under its original timestamp')

# The local backup store, as `nemoclaw backups prune|verify|restore` (steps/store_ops.py).
declare("prune_backups", STORE_OPS, params={"keep": int, "sandbox": str}, writes=("prune_report",), mutates=True,
        doc="keeps the `keep` newest backups of each sandbox (of `sandbox`) and removes the rest, never a sandbox's newest backup that verifies; fails, after pruning, when a kept backup is damaged; needs the run's writer lock; a killed prune is finished by the next run")
declare("verify_backups", STORE_OPS, params={"sandbox": str, "all": bool, "sample": float}, local=True,
        writes=("verify_report",),
        doc="re-hashes the newest backup of each sandbox (of `sandbox`; every backup with `all`; a `sample` percentage of files) against its manifest; fails naming each damaged or invalid backup, or when there is none")
declare("restore_backup", STORE_OPS, params={"sandbox": str, "timestamp": str}, mutates=True,
        doc="writes backup `timestamp` (default `latest`: the newest, refused when it is invalid) of `sandbox` (default `{name}`) into that running sandbox, checked against its registry identity, and reads every file back; journals the backup it chose, so a resumed run restores that one; needs the writer lock")

# migrate-openshell: the OpenShell 0.0.x -> 0.1.x migration (steps/migrate.py, facts in steps/migrate_facts.py).
MIGRATE = f"{_PKG}.migrate"
ABORT = StepOption(bool, False, "Still on OpenShell 0.0.x, recreate the deleted sandboxes there from their backups "
                   "and drop the plan.")
MIGRATE_IMAGES = StepOption(str, None, "NAME=REF[,NAME=REF...]: recreate sandbox NAME on 0.1.x from image REF.")
declare("migration_phase", MIGRATE,
        outcomes=("next", "delete", "waiting", "announced", "finish", "abort", "none", "attention"),
        reads=("cli_version", "registry"), options={"check": CHECK, "abort": ABORT},
        doc="what a `migrate-openshell` run does, from the release line and the plan file ([migration.md](migration.md)); "
            "`check` reports and ends `attention` or `none`")
declare("record_migration_plan", MIGRATE, reads=("registry", "sandbox_list", "committed", "cli_version"), mutates=True,
        options={"image": MIGRATE_IMAGES},
        doc="records the plan file from the committed backups (name, registry file and row, agent, image, phase, "
            "backup); an image 0.1.x cannot use stops it, naming `--image`; idempotent")
declare("confirm_migration", MIGRATE, outcomes=("next", "declined"), mutates=True, options={"yes": YES},
        doc="asks before any delete unless `yes` (no terminal: declined); a declined plan is kept aside, nothing deleted")
declare("delete_for_migration", MIGRATE, may_read=("registry",), mutates=True,
        doc="deletes each planned sandbox through the 0.0.x CLI (`openshell sandbox delete`), then prints the next "
            "steps and leaves the plan waiting; idempotent")
declare("migration_items", MIGRATE, outcomes=("next", "none"), may_read=("sandbox_list",), writes=("to_migrate",),
        mutates=True, options={"abort": ABORT},
        doc="the finish (or `abort`) half: the planned sandboxes not yet recreated (`to_migrate`)")
declare("migration_target", MIGRATE, outcomes=("next", "already"), writes=("rebuild_plan", "committed"),
        options={"name": SANDBOX_NAME, "image": MIGRATE_IMAGES},
        doc="one plan entry as a `rebuild_plan` (its image, or the `image` replacement, its backup); `already` when it "
            "was recreated by an earlier run")
declare("record_migrated", MIGRATE, reads=("rebuild_plan",), may_read=("registry",), mutates=True,
        doc="the registry row (every field we do not own kept; the fingerprint follows the new id) and the plan entry "
            "after a sandbox is recreated; idempotent")
declare("migration_report", MIGRATE, outcomes=("next", "partial"), may_read=("item_results",),
        writes=("migration_report",), mutates=True,
        doc="counts what was recreated (an `Error` one is named), closes the plan when all are done (`partial` "
            "otherwise: the next run retries the rest)")
