"""rebuild-sandbox: back up → delete → create from the target image → wait Ready → restore →
verify → record, with rollback (docs/reference/nemoclaw-commands.md, "A rebuild").

`rebuild_target` writes the `rebuild_plan` and `backup_targets` facts; the backup itself is the
`snapshot`/`commit_backups` pair of backup-all, whose `committed` path the restore and the
rollback use. The backup is never deleted.

Every step that changes the world is idempotent, so that a resumed run can run it again
(`resume: retry` in rebuild-sandbox.yaml): deleting an absent sandbox is done, creating one that
already runs the target image is done, a restore makes each restored dir equal to the backup
again, recording the version writes the same value, stopping a Stopped sandbox is done.
`--from-backup` recreates an absent sandbox from a backup: create, wait, restore, verify, record.

Every lifecycle change is an `openshell sandbox create|delete|stop` (adapters/openshell/lifecycle.py),
never a Docker call on a managed container (docs/reference/sandbox-lifecycle.md). A sandbox in
phase Stopped or Error is backed up from its stopped container without starting it (NemoClaw
#12305); one that was Stopped is returned to Stopped after the rebuild (#12173), also by a run
resumed after a kill; one in Error comes back running, and the plan says so.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..adapters.agents.version import probe_version, recorded_version
from ..kernel.errors import StepError
from ..engine.registry import implements
from ..adapters.openshell import capture_openshell, list_args, parse_listing
from ..adapters.openshell.cli import installed_openshell_version, version_gte
from ..adapters.openshell.lifecycle import ERROR, NOT_RUNNING_PHASES, STOPPED, run_lifecycle, sandbox_phase
from ..adapters.openshell.rpc_errors import failure_gist
from ..adapters.nemoclaw_registry import SandboxEntry, entry_from_row, pinned_digest
from ..kernel.paths import rebase
from ..adapters.sandbox_containers import data_root, find_sandbox_container, stopped_workload
from ..adapters.agents.definitions import load_agent
from ..store import BackupStore, load_manifest, restore_backup
from ..store.errors import StoreError
from ..store.restore import read_back, restore_names
from ._kill_points import pause_point
from ._openshell_common import listed_container
from .facts import BACKUP_TARGETS, COMMITTED, REBUILD_PLAN, REGISTRY, RebuildPlan, SANDBOX_DELETED, SANDBOX_LIST
from .registry import follow_identity, record_agent_version, refuse_problem, register_from_backup, verify_identity

if TYPE_CHECKING:
    from ..engine.context import RunContext

OPERATION_TIMEOUT = 120.0


def _plan(ctx: "RunContext") -> RebuildPlan:
    return ctx.get(REBUILD_PLAN)


def _with_tag(image: str, tag: str) -> str:
    repo = image.rsplit("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return f"{repo}:{tag}"


@implements("rebuild_target")
def rebuild_target(ctx: "RunContext") -> str:
    """Check the sandbox is registered and running, Stopped or in Error (or, with --from-backup,
    absent); work out the current and target images."""
    out = ctx.out
    name = str(ctx.option("name"))
    entry = next((e for e in ctx.get(REGISTRY) if e.name == name), None)
    if entry is None and ctx.option("from_backup"):
        entry = _entry_from_backup(ctx, name)
    if entry is None:
        raise StepError(f"Sandbox '{name}' is not registered in {ctx.paths.registry_file}.", exit_code=1)
    refuse_problem(entry)
    try:
        agent = load_agent(entry.agent)
    except StoreError as exc:
        raise StepError(str(exc), exit_code=2) from None
    listing = ctx.get(SANDBOX_LIST)
    if ctx.option("from_backup"):
        return _plan_from_backup(ctx, name, entry, agent, listing)
    # A Stopped or Error sandbox is backed up from its stopped container, never started.
    phase = listing.phases.get(name) if name not in listing.ready and name in listing.live else None
    stopped = (stopped_workload(name, listing.ids.get(name), listing.workspaces.get(name))
               if phase in NOT_RUNNING_PHASES else None)
    if name not in listing.ready and stopped is None:
        raise StepError(f"Sandbox '{name}' is not running. Cannot back up state.")
    verify_identity(ctx, name)
    container = stopped if stopped is not None else listed_container(ctx, name)
    previous = container.attrs.get("Config", {}).get("Image") or (container.image.tags or [""])[0]
    if not previous:
        raise StepError(f"Cannot tell which image sandbox '{name}' runs.")
    expected = agent.expected_version
    # A pinned sandbox (`repository@sha256:<digest>`) is rebuilt from the same digest, so its
    # agent version is whatever that image holds: not checked against the expected one.
    pinned = None if ctx.option("image") else pinned_digest(entry.image) or pinned_digest(previous)
    if pinned:
        expected = None
    target = ctx.option("image") or ("@".join(pinned) if pinned else _with_tag(previous, expected) if expected else None)
    if not target:
        raise StepError(f"No target image for '{name}': agent '{agent.name}' declares no expected version; pass --image.")
    current = recorded_version(entry, agent, container) if stopped is not None else probe_version(container, agent)
    plan = RebuildPlan(name, agent.name, current, expected, previous, target, phase=phase if stopped is not None else None)
    ctx.set(REBUILD_PLAN, plan)
    ctx.set(BACKUP_TARGETS, [name])
    out.say(f"Rebuild sandbox '{name}'", tone="title", sandbox=name)
    out.say(f"Current: {plan.current or '?'} ({previous})", indent=4)
    out.say(f"Target:  {plan.expected or '?'} ({target})", indent=4)
    if plan.phase == STOPPED:
        out.say(f"Sandbox '{name}' is Stopped: backing it up from its stopped container without starting it; "
                "it is returned to Stopped after the rebuild.")
    elif plan.phase == ERROR:
        out.say(f"Sandbox '{name}' is in phase Error: rebuilding it from a backup of its stopped container, "
                "without starting it; the rebuilt sandbox runs.")
    out.say("Backing up sandbox state...")
    return "next"


def _plan_from_backup(ctx: "RunContext", name: str, entry: SandboxEntry, agent: Any, listing: Any) -> str:
    """--from-backup: recreate an absent sandbox from one of its backups (no backup, no delete)."""
    out = ctx.out
    if name in listing.live:
        raise StepError(f"Sandbox '{name}' exists (phase {listing.phases.get(name, '?')}); "
                        f"rebuild it with `nemoclaw rebuild-sandbox {name}` (no --from-backup).", exit_code=1)
    backup = select_backup(ctx.paths.backups_root, name, str(ctx.option("from_backup")))
    recorded = backup.manifest.sandbox_image
    expected = agent.expected_version
    image = ctx.option("image") or (_with_tag(recorded, expected) if recorded and expected else recorded)
    if not image:
        raise StepError(f"The backup {backup.path} does not record the sandbox's image; pass --image IMAGE.", exit_code=2)
    plan = RebuildPlan(name, agent.name, entry.agent_version, expected, recorded or image, image, from_backup=str(backup.path))
    ctx.set(REBUILD_PLAN, plan)
    ctx.set(BACKUP_TARGETS, [])
    out.say(f"Recreate sandbox '{name}' from its backup", tone="title", sandbox=name)
    out.say(f"Backup: {backup.path}", indent=4)
    out.say(f"Image:  {image}", indent=4)
    return "from_backup"


def _entry_from_backup(ctx: "RunContext", name: str) -> SandboxEntry:
    """A sandbox the registry does not know, recreated from its backup: the entry its backup's
    recorded registry row will be once `create` registers it (steps/registry.py)."""
    backup = select_backup(ctx.paths.backups_root, name, str(ctx.options["from_backup"]))
    m = backup.manifest
    if m.registry_row is None or m.registry_file is None:
        raise StepError(f"Sandbox '{name}' is not registered in {ctx.paths.registry_file} and its backup {backup.path} "
                        "does not record its registry row: register it with NemoClaw (nemoclaw onboard), then rerun.",
                        exit_code=1)
    try:
        return entry_from_row(ctx.paths.nemoclaw_dir, m.registry_file, name, m.registry_row)
    except StepError as exc:
        raise StepError(f"The registry row recorded in {backup.path} cannot be used: {str(exc).strip()}",
                        exit_code=2) from None


def select_backup(root: Path, name: str, which: str) -> Any:
    """`latest` (the newest backup that verifies) or a backup's timestamp; a clear StepError
    when there is none (never a silent other choice)."""
    store = BackupStore(root, load_agent)
    try:
        backups = store.list(name)
    except StoreError as exc:
        raise StepError(str(exc), exit_code=2) from None
    if which != "latest":
        chosen = [b for b in backups if b.path.name == which or b.timestamp == which]
        if not chosen:
            raise StepError(f"No valid backup '{which}' of sandbox '{name}' in {root / name}; "
                            f"see `nemoclaw backups list {name}`.", exit_code=1)
        candidates = chosen
    else:
        candidates = backups
    for b in candidates:
        mismatch = store.verify(b)
        if mismatch is None:
            return b
        if which != "latest":
            raise StepError(f"Backup {b.path} does not verify ({mismatch}); choose another with --from-backup.", exit_code=1)
    raise StepError(f"No verified backup of sandbox '{name}' in {root / name}.", exit_code=1)


def latest_verified_backup(root: Path, name: str) -> Path | None:
    try:
        return select_backup(root, name, "latest").path
    except StepError:
        return None


class OpenShellFailed(StepError):
    def __init__(self, what: str, status: int, output: str) -> None:
        self.gist = failure_gist(output)
        super().__init__(f"{what} failed: {self.gist} (openshell exit {status})")


def _lifecycle(verb: str, name: str, what: str, image: str | None = None) -> str:
    """`openshell sandbox <verb>` (adapters/openshell/lifecycle.py); OpenShellFailed on a non-zero exit."""
    result = run_lifecycle(verb, name, image=image, timeout=OPERATION_TIMEOUT)
    if result.status != 0:
        raise OpenShellFailed(what, result.status, result.output)
    return result.output


def _live(name: str) -> tuple[bool, str | None]:
    """Whether OpenShell lists `name` now, and its phase."""
    listing = parse_listing(*_list_texts())
    return name in listing.live, dict((e.name, e.phase) for e in listing.entries).get(name)


@implements("delete_sandbox", advice=lambda f, s: rebuild_advice(f, s))
def delete_sandbox(ctx: "RunContext") -> None:
    """`openshell sandbox delete NAME`; a sandbox already gone counts as deleted (idempotent)."""
    plan = _plan(ctx)
    verify_identity(ctx, plan.name, absent_ok=True)
    ctx.out.say(f"Deleting sandbox '{plan.name}'...")
    try:
        _lifecycle("delete", plan.name, f"Deleting sandbox '{plan.name}'")
    except OpenShellFailed:
        listed, _ = _live(plan.name)
        if listed:
            raise
        ctx.out.say(f"Sandbox '{plan.name}' is already deleted.")
    ctx.set(SANDBOX_DELETED, True)
    ctx.event("sandbox_deleted", sandbox=plan.name, image=plan.previous_image)


def _create(ctx: "RunContext", plan: RebuildPlan, image: str) -> None:
    _lifecycle("create", plan.name, f"Creating sandbox '{plan.name}' from {image}", image=image)
    ctx.event("sandbox_created", sandbox=plan.name, image=image)


@implements("create_sandbox", advice=lambda f, s: rebuild_advice(f, s))
def create_sandbox(ctx: "RunContext") -> None:
    """`openshell sandbox create --name NAME --from <target image>`; a sandbox that already
    exists on the target image counts as created (idempotent), one on another image fails."""
    plan = _plan(ctx)
    listed, _ = _live(plan.name)
    if listed:
        if _runs_image(plan.name, plan.target_image):
            ctx.out.say(f"Sandbox '{plan.name}' already exists on {plan.target_image}.")
        else:
            raise StepError(f"Sandbox '{plan.name}' exists but does not run {plan.target_image}; not creating it again.")
    else:
        ctx.out.say("Creating new sandbox with current image...")
        _create(ctx, plan, plan.target_image)
    if plan.from_backup:
        register_from_backup(ctx, plan.name, plan.from_backup)  # a host that lost its registry


def _wait_ready(name: str, timeout: float) -> None:
    args = list_args(installed_openshell_version())
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        result = capture_openshell(args, timeout=30)
        listing = parse_listing(result.stdout, result.output)
        if name in listing.ready:
            return
        last = dict((e.name, e.phase) for e in listing.entries).get(name, "not listed")
        if time.monotonic() > deadline:
            raise StepError(f"Sandbox '{name}' did not become Ready within {timeout:.0f} s (phase: {last}).", kind="timeout")
        time.sleep(0.5)


@implements("wait_ready", advice=lambda f, s: rebuild_advice(f, s))
def wait_ready(ctx: "RunContext") -> None:
    """Poll `openshell sandbox list` until the sandbox is Ready (`with.timeout`, default 120 s)."""
    plan = _plan(ctx)
    _wait_ready(plan.name, float(ctx.param("timeout")))


def _backup_dir(ctx: "RunContext", name: str) -> Path:
    path = ctx.get(COMMITTED, {}).get(name) or _plan(ctx).from_backup
    if path is None:
        raise StepError(f"No committed backup of '{name}' in this run.")
    return Path(path)


def _restore(ctx: "RunContext", name: str) -> Any:
    backup = _backup_dir(ctx, name)
    follow_identity(ctx, name)  # the recreated sandbox is the one its registry row names now
    container = find_sandbox_container(name)

    def on_progress(_bytes: int, files: int) -> None:
        if files:
            pause_point(ctx, "restore", name)  # test hook: the upload is under way

    try:
        manifest = load_manifest(backup)
        if manifest.sandbox_name != name:  # a journal may name any directory: never restore another's
            raise StepError(f"Refusing to restore {backup} into sandbox '{name}': it is a backup of sandbox "
                            f"'{manifest.sandbox_name}'.")
        result = restore_backup(container, backup, manifest, on_progress=on_progress,
                                data_root=data_root(container), agents=load_agent)
    except StoreError as exc:
        raise StepError(f"Restoring '{name}' from {backup} failed: {exc}") from None
    if not result.ok:
        raise StepError(f"Restored files of '{name}' do not match the backup: {result.mismatch}")
    return result


@implements("restore_sandbox", advice=lambda f, s: rebuild_advice(f, s))
def restore_sandbox(ctx: "RunContext") -> None:
    """Write the backup (committed by this run, or the --from-backup one) into the new
    sandbox; restoring again is safe (each restored dir is first made empty)."""
    plan = _plan(ctx)
    ctx.out.say("Restoring workspace state...")
    result = _restore(ctx, plan.name)
    ctx.event("sandbox_restored", sandbox=plan.name, files=result.files, bytes=result.bytes)


@implements("verify_rebuild", advice=lambda f, s: rebuild_advice(f, s))
def verify_rebuild(ctx: "RunContext") -> None:
    """The new sandbox runs the expected agent version and its files hash equal to the backup."""
    plan = _plan(ctx)
    container = find_sandbox_container(plan.name)
    agent = load_agent(plan.agent)
    version = probe_version(container, agent)
    if plan.expected and (version is None or not (version_gte(version, plan.expected) and version_gte(plan.expected, version))):
        raise StepError(f"Sandbox '{plan.name}' reports agent version {version or 'unknown'}, expected {plan.expected}.")
    backup = _backup_dir(ctx, plan.name)
    manifest = load_manifest(backup)
    mismatch = read_back(container, manifest, restore_names(backup, manifest), base=rebase(manifest.dir, data_root(container)))
    if mismatch is not None:
        raise StepError(f"Sandbox '{plan.name}' files differ from the backup after restore: {mismatch}")


def _return_to_stopped(ctx: "RunContext", plan: RebuildPlan) -> None:
    """`openshell sandbox stop`, then `openshell sandbox get` must say Stopped (idempotent)."""
    if sandbox_phase(plan.name) == STOPPED:
        ctx.out.say(f"Sandbox '{plan.name}' is already Stopped.")
        return
    _lifecycle("stop", plan.name, f"Stopping sandbox '{plan.name}'")
    phase = sandbox_phase(plan.name)
    if phase != STOPPED:
        raise StepError(f"Sandbox '{plan.name}' was stopped through OpenShell but `openshell sandbox get` shows "
                        f"phase {phase or 'unknown'}; run `openshell sandbox stop {plan.name}` and check it.")
    ctx.event("sandbox_stopped", sandbox=plan.name)
    ctx.out.say(f"Returned '{plan.name}' to Stopped through OpenShell, as it was before the rebuild.")


@implements("return_to_stopped", advice=lambda f, s: rebuild_advice(f, s))
def return_to_stopped(ctx: "RunContext") -> None:
    """A sandbox that was Stopped before the rebuild is stopped again through OpenShell
    (NemoClaw #12173); any other sandbox is left running."""
    plan = _plan(ctx)
    if plan.phase == STOPPED:
        _return_to_stopped(ctx, plan)


@implements("record_version")
def record_version(ctx: "RunContext") -> None:
    """Update the registry's agentVersion and say the rebuild succeeded (idempotent)."""
    plan = _plan(ctx)
    if plan.expected:
        record_agent_version(ctx, plan.name, plan.expected)
    done = "recreated from its backup" if plan.from_backup else "rebuilt successfully"
    ctx.out.ok(f"Sandbox '{plan.name}' {done}", sandbox=plan.name)


_WHAT_FAILED = {
    "delete": "deleting the old sandbox",
    "create": "creating the new sandbox",
    "wait": "waiting for the new sandbox to be Ready",
    "restore": "restoring the backup into the new sandbox",
    "verify": "verifying the new sandbox",
}


def _cause(ctx: "RunContext") -> str:
    exc = ctx.last_error
    if exc is None:
        return "unknown error"
    return getattr(exc, "gist", None) or " ".join(str(exc).split())


def manual_commands(plan: RebuildPlan, backup: str | None) -> list[str]:
    """The commands that put the sandbox back by hand (its previous image, then the backup)."""
    lines = [f"    openshell sandbox delete {plan.name}    # only if it is still listed",
             f"    openshell sandbox create --name {plan.name} --from {plan.previous_image}"]
    if backup:
        lines.append(f"    nemoclaw backups restore {plan.name} --from {Path(backup).name} --recreated")
    else:  # the journal lost which backup (damaged): the newest verified one is the rebuild's own
        lines.append(f"    nemoclaw backups list {plan.name}    # the newest verified backup is the rebuild's")
        lines.append(f"    nemoclaw backups restore {plan.name} --from <that timestamp> --recreated")
    if plan.phase == STOPPED:
        lines.append(f"    openshell sandbox stop {plan.name}    # it was Stopped before the rebuild")
    return lines


def rebuild_advice(facts: dict[str, Any], state: str) -> list[str]:
    """For `nemoclaw runs abandon`: the state a rebuild left the sandbox in, and the commands."""
    plan: RebuildPlan | None = facts.get("rebuild_plan")
    if plan is None:
        return ["  The run stopped before it changed any sandbox; nothing needs restoring by hand."]
    backup = (facts.get("committed") or {}).get(plan.name) or plan.from_backup
    what = {
        "delete": "may be deleted",
        "create": "may be absent or half-created",
        "wait": "may not be Ready yet",
        "restore": "may run the new image without all of its files",
        "verify": "runs the new image; its files were not verified",
        "stop": "was rebuilt and runs; it was Stopped before the rebuild",
        "rollback": "may be absent, or on either image without all of its files",
    }.get(state, f"was left in state '{state}'")
    lines = [f"  Sandbox '{plan.name}' {what}. The backup is kept in {backup}." if backup else f"  Sandbox '{plan.name}' {what}.",
             "  To put it back as it was, run:"]
    return lines + manual_commands(plan, backup)


@implements("rollback_rebuild", advice=lambda f, s: rebuild_advice(f, s))
def rollback_rebuild(ctx: "RunContext") -> None:
    """After a failure past the backup: recreate from the previous image and restore the same
    backup; if that fails too, print the commands that restore it by hand. Always ends failed.

    The failure itself was already printed by the engine; the StepError raised here is the
    one-line account an upgrade-sandboxes run repeats as `Failed to rebuild '<name>': ...`."""
    plan = _plan(ctx)
    out = ctx.out
    what = _WHAT_FAILED.get(ctx.last_error_state or "", f"state '{ctx.last_error_state}'")
    cause = _cause(ctx)
    backup = ctx.get(COMMITTED, {}).get(plan.name) or plan.from_backup
    if getattr(ctx.last_error, "kind", None) == "identity":  # refused before its delete: nothing to undo
        raise StepError(f"{what} refused ({cause})", sandbox=plan.name, details=())  # the refusal was shown
    try:
        existing = parse_listing(*_list_texts())
    except (StepError, OSError):
        existing = None  # the rollback below will say what is wrong, and print the commands
    if (existing is not None and not ctx.get(SANDBOX_DELETED, False) and not plan.from_backup and plan.name in existing.ready
            and _runs_image(plan.name, plan.previous_image)):
        # The delete itself failed and the sandbox is still there, untouched: nothing to undo.
        raise StepError(f"{what} failed ({cause}); the sandbox was left as it was", sandbox=plan.name, details=[
            f"Sandbox '{plan.name}' was not deleted; it still runs {plan.previous_image}. Nothing was changed."])
    if (existing is not None and not ctx.get(SANDBOX_DELETED, False) and not plan.from_backup and plan.phase
            and dict((e.name, e.phase) for e in existing.entries).get(plan.name) == plan.phase):
        # The same, for a sandbox that was not running: still listed in its phase, never started.
        raise StepError(f"{what} failed ({cause}); the sandbox was left as it was", sandbox=plan.name, details=[
            f"Sandbox '{plan.name}' was not deleted; it is still {plan.phase}. Nothing was changed."])
    out.say(f"Rolling back '{plan.name}' to {plan.previous_image} and restoring {backup}...", err=True)
    try:
        if backup is None:
            raise StepError(f"No committed backup of '{plan.name}' in this run.")
        if existing is None:
            existing = parse_listing(*_list_texts())
        if plan.name in existing.live:
            _lifecycle("delete", plan.name, f"Deleting the half-built sandbox '{plan.name}'")
        _create(ctx, plan, plan.previous_image)
        _wait_ready(plan.name, float(ctx.param("timeout")))
        _restore(ctx, plan.name)
        if plan.phase == STOPPED:
            _return_to_stopped(ctx, plan)
    except (StepError, StoreError, OSError) as exc:
        ctx.event("rollback_failed", sandbox=plan.name, image=plan.previous_image, backup=str(backup), error=str(exc))
        shown = [f"Rollback of '{plan.name}' failed too: {getattr(exc, 'gist', None) or ' '.join(str(exc).split())}",
                 f"The backup is kept in {backup}. Restore the sandbox by hand:" if backup else "Restore the sandbox by hand:",
                 *manual_commands(plan, backup)]
        raise StepError(f"{what} failed ({cause}) and so did the rollback; restore it by hand as shown above",
                        sandbox=plan.name, details=shown, outcome="unrecovered") from None
    ctx.event("rolled_back", sandbox=plan.name, image=plan.previous_image, backup=str(backup))
    how = "is Stopped again on" if plan.phase == STOPPED else "runs"
    raise StepError(f"{what} failed ({cause}); rolled back to {plan.previous_image} with its files restored", sandbox=plan.name,
                    details=[f"Rolled back '{plan.name}': it {how} {plan.previous_image} again with its files restored from {backup}."])


def _runs_image(name: str, image: str) -> bool:
    try:
        container = find_sandbox_container(name)
    except StepError:
        return False
    return container.attrs.get("Config", {}).get("Image") == image


def _list_texts() -> tuple[str, str]:
    result = capture_openshell(list_args(installed_openshell_version()), timeout=30)
    return result.stdout, result.output
