"""migrate-openshell: carry every sandbox across the OpenShell 0.0.x -> 0.1.x reinstall
(docs/migration.md; upstream's guide in our words: docs/reference/openshell-0.1-migration.md).

OpenShell 0.0.x cannot be upgraded in place and its sandboxes cannot be carried over: they are
removed before the reinstall and recreated after it. One migration is so two phases with the
user's reinstall between them, held together by the plan file (store/migration_plan.py):

* prepare (CLI and gateway 0.0.x): backup-all's steps back up every registered sandbox, strict;
  `record_migration_plan` writes the plan; `confirm_migration` asks; `delete_for_migration`
  deletes each sandbox through the 0.0.x CLI and leaves the plan `waiting`;
* finish (CLI and gateway 0.1.x): `migration_items` lists what is left, a foreach runs the
  `migrate-sandbox` workflow per sandbox (`migration_target`, then rebuild-sandbox's create,
  wait, restore, verify and stop steps, then `record_migrated`), `migration_report` closes the
  plan once every sandbox is back;
* abort (0.0.x, a plan waiting): the same per-sandbox workflow on 0.0.x, from the same backups.

`migration_phase` decides which, from the preflight's CLI version (the preflight has refused
already when CLI and gateway are on different lines) and the plan. Every step here that changes
the world is idempotent: a kill anywhere is finished by the next run (the engine resumes the
killed run from its journal; the plan says what is done).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..adapters.agents.definitions import load_agent
from ..adapters.openshell.cli import installed_openshell_version
from ..adapters.openshell.lifecycle import ERROR, STOPPED
from ..adapters.openshell.version import parse_openshell_version
from ..engine.registry import implements
from ..kernel.errors import StepError
from ..store import load_manifest
from ..store.errors import StoreError
from ..store.migration_plan import (
    ABORTING, BACKED_UP, DELETED, FINISHING, MIGRATED, PREPARING, RESTORED, WAITING, MigrationPlan, PlanError,
    PlannedSandbox, close_plan, load_plan, now_stamp, plan_path, save_plan,
)
from ._kill_points import pause_point
from .facts import RebuildPlan
from .migrate_facts import MigratedSandbox, MigrationReport

if TYPE_CHECKING:
    from ..engine.context import RunContext
    from ..engine.output import Reporter

DOCKERFILE_IMAGE_PREFIX = "openshell/sandbox-from:"
"""How OpenShell 0.0.x names an image it built from a Dockerfile (`sandbox create --from
<Dockerfile>`); 0.1.x no longer builds Dockerfiles (OS#3214), so such a sandbox needs an image
of the user's own (`--image NAME=REF`)."""


# --- small pure helpers (tests/steps/test_migrate_logic.py) ----------------------------------------

def line_of(version: str | None) -> str | None:
    """`0.0.x` or `0.1.x` (None when unknown)."""
    v = parse_openshell_version(version)
    return v.line if v else None


def parse_images(text: str | None) -> dict[str, str]:
    """`--image NAME=REF[,NAME=REF...]` (also space-separated) -> {name: ref}; StepError (exit 2) on a bad item."""
    out: dict[str, str] = {}
    for item in (text or "").replace(",", " ").split():
        name, sep, ref = item.partition("=")
        if not sep or not name or not ref:
            raise StepError(f"--image takes NAME=REF (the sandbox and the image to recreate it from), not {item!r}.",
                            exit_code=2)
        out[name] = ref
    return out


def unusable_on_01(image: str) -> bool:
    """An image OpenShell 0.1.x cannot recreate a sandbox from: one 0.0.x built from a Dockerfile."""
    return image.startswith(DOCKERFILE_IMAGE_PREFIX)


def decide_phase(line: str | None, plan: MigrationPlan | None, *, abort: bool, resumed_here: bool = False) -> str:
    """Which part of the migration this run does: the outcome of `migration_phase`."""
    if line == "0.0.x":
        if plan is None:
            return "abort_nothing" if abort else "prepare"
        if abort:
            return "abort"
        if plan.stage == PREPARING:
            return "delete"
        if plan.stage == ABORTING:
            return "abort"
        if plan.stage == WAITING and resumed_here:
            return "announced"  # the killed run this command resumed has just left it waiting
        return "waiting"
    if line == "0.1.x":
        if abort:
            return "abort_too_late" if plan is not None else "abort_nothing"
        if plan is None:
            return "none"
        if plan.stage == ABORTING:
            return "abort_too_late"
        return "finish"
    return "unknown_line"


# --- migration_phase --------------------------------------------------------------------------------

def _plan_or_fail(ctx: "RunContext") -> MigrationPlan | None:
    try:
        return load_plan(ctx.paths.nemoclaw_dir)
    except PlanError as exc:
        raise StepError(str(exc), exit_code=1) from None


def _say_next_steps(out: "Reporter", plan: MigrationPlan) -> None:
    v = plan.from_version
    out.say("Waiting for OpenShell 0.1. Next:")
    out.say(f"1. Remove the OpenShell {v} gateway (stop it; uninstall the 0.0.x package).", indent=4)
    out.say("2. Install OpenShell 0.1.x: the CLI and the gateway, from the same release.", indent=4)
    out.say("3. Run `nemoclaw migrate-openshell` again: it recreates these sandboxes on 0.1.x from their backups.",
            indent=4)
    out.say(f"To put them back on OpenShell {v} instead, run `nemoclaw migrate-openshell --abort` before step 1.")


def _where(s: PlannedSandbox, line: str | None) -> str:
    if s.state == MIGRATED:
        return "recreated on 0.1.x"
    if s.state == RESTORED:
        return "recreated on 0.0.x (aborted)"
    if s.state == DELETED:
        return "deleted on 0.0.x, kept in its backup" + ("; to recreate" if line == "0.1.x" else "")
    return "backed up, not yet deleted"


def _check(ctx: "RunContext", plan: MigrationPlan | None, line: str | None, cli: str | None) -> str:
    out = ctx.out
    if plan is None:
        if line == "0.1.x":
            out.say(f"No migration is waiting, and OpenShell is {cli} (0.1.x): nothing to migrate.")
            return "none"
        names = [e.name for e in ctx.fact("registry")]
        out.say(f"{len(names)} sandbox(es) on OpenShell {cli} (0.0.x) to migrate to 0.1: {', '.join(names)}.")
        out.say("Run `nemoclaw migrate-openshell` to back them up and remove them before installing OpenShell 0.1.")
        return "attention"
    out.say(f"Migration to OpenShell 0.1 ({plan.stage}), recorded by run {plan.run} on OpenShell {plan.from_version}:")
    for s in plan.sandboxes:
        image = s.new_image or s.image
        was = f", was {s.phase}" if s.phase else ""
        out.say(f"{s.name}  {_where(s, line)}  ({image}{was}; backup {s.backup})", indent=4)
    left = [s for s in plan.sandboxes if s.state not in (MIGRATED, RESTORED)]
    if plan.stage == WAITING and line == "0.0.x":
        _say_next_steps(out, plan)
    elif left:
        out.say("Run `nemoclaw migrate-openshell` to go on.")
    return "attention"


def _closed_since(ctx: "RunContext", how: str) -> bool:
    """Whether a plan was closed as `how` since this run started (by a run it resumed)."""
    started = ctx.run_id.split("-", 1)[0]
    kept = plan_path(ctx.paths.nemoclaw_dir).parent.glob(f"openshell-0.1.*.{how}.json")
    return any(p.name.split(".")[2] > started for p in kept)


def _resumed_by(ctx: "RunContext", run_id: str) -> bool:
    """Whether this command has just resumed run `run_id` (its journal says `run_resumed` by this run)."""
    from ..engine.journal import read_journal

    path = ctx.paths.runs_dir / f"{run_id}.jsonl"
    if not path.exists():
        return False
    events, _ = read_journal(path)
    return any(e.get("event") == "run_resumed" and e.get("by") == ctx.run_id for e in events)


@implements("migration_phase")
def migration_phase(ctx: "RunContext") -> str:
    """Decide, from the release line CLI and gateway agree on and the plan, what this run does."""
    cli = ctx.fact("cli_version")
    line = line_of(cli)
    plan = _plan_or_fail(ctx)
    if ctx.option("check"):
        return _check(ctx, plan, line, cli)
    abort = bool(ctx.option("abort"))
    phase = decide_phase(line, plan, abort=abort, resumed_here=plan is not None and _resumed_by(ctx, plan.run))
    out = ctx.out
    if phase == "unknown_line":
        raise StepError(f"Cannot tell which OpenShell release line the installed CLI ({cli or 'unknown version'}) "
                        "is on; run `openshell --version` and check the installation.", exit_code=1)
    if phase == "abort_nothing" and _closed_since(ctx, "aborted"):
        out.say("The migration was aborted by the run resumed above; nothing is left to abort.")
        return "none"
    if phase == "abort_nothing":
        raise StepError("No migration to OpenShell 0.1 is waiting: there is nothing to abort.", exit_code=1)
    if phase == "abort_too_late":
        raise StepError("OpenShell 0.1 is installed now: the migration can no longer be aborted; run "
                        "`nemoclaw migrate-openshell` to finish it on 0.1.", exit_code=1)
    if phase == "none":
        out.say(f"No migration is waiting, and OpenShell is {cli} (0.1.x): nothing to migrate.")
        return "none"
    if phase == "announced":
        assert plan is not None
        if not (plan.waiting_since and plan.waiting_since > ctx.run_id.split("-", 1)[0]):
            _say_next_steps(out, plan)  # the killed run had said it; say it again
        return "announced"
    if phase == "waiting":
        assert plan is not None
        deleted = plan.names(DELETED)
        out.say(f"The migration to OpenShell 0.1 is waiting for OpenShell 0.1, but the installed CLI and the "
                  f"running gateway are still {cli}. Nothing was changed.", err=True)
        out.say(f"{len(deleted)} sandbox(es) are kept in their backups: {', '.join(deleted)}.", err=True)
        out.say("Remove the 0.0.x gateway, install OpenShell 0.1.x (CLI and gateway), then run "
                  "`nemoclaw migrate-openshell` again; or run `nemoclaw migrate-openshell --abort` to recreate them "
                  f"on {cli}.", err=True)
        return "waiting"
    if phase == "prepare":
        out.say(f"Preparing the migration to OpenShell 0.1: backing up every registered sandbox on OpenShell {cli}.")
        return "next"
    if phase == "delete":
        out.say(f"Going on with the migration recorded by run {plan.run if plan else '?'}: its backups are committed.")
    if phase == "finish":
        out.say(f"Finishing the migration to OpenShell 0.1 on OpenShell {cli}.")
    if phase == "abort":
        out.say(f"Aborting the migration: recreating the deleted sandboxes on OpenShell {cli} from their backups.")
    return phase


# --- prepare ----------------------------------------------------------------------------------------

def _row(entry: Any) -> dict[str, Any]:
    try:
        doc = json.loads(Path(entry.registry).read_text(encoding="utf-8"))
        row = doc.get("sandboxes", {}).get(entry.key or entry.name)
    except (OSError, ValueError) as exc:
        raise StepError(f"Cannot read the registry row of '{entry.name}' from {entry.registry}: {exc}") from None
    return dict(row) if isinstance(row, dict) else {}


@implements("record_migration_plan")
def record_migration_plan(ctx: "RunContext") -> None:
    """Write the plan (store/migration_plan.py) from the committed backups: nothing is deleted
    before it is on disk. An image 0.1.x cannot use and no --image for it stops here."""
    committed: dict[str, str] = ctx.fact("committed", {})
    listing = ctx.fact("sandbox_list")
    images = parse_images(ctx.option("image"))
    registry = ctx.fact("registry")
    unknown = sorted(set(images) - {e.name for e in registry})
    if unknown:
        raise StepError(f"--image names sandbox(es) that are not registered: {', '.join(unknown)}.", exit_code=2)
    existing = _plan_or_fail(ctx)
    if existing is not None and existing.run == ctx.run_id:
        return  # resumed: already recorded by this run
    if existing is not None:  # never written over: it may hold sandboxes that are only in their backups
        raise StepError(f"A migration plan recorded by run {existing.run} is already in "
                        f"{plan_path(ctx.paths.nemoclaw_dir)} ({existing.stage}); run `nemoclaw migrate-openshell --check`.")
    entries: list[PlannedSandbox] = []
    blocked: list[str] = []
    for e in registry:
        backup = committed.get(e.name)
        if backup is None:
            raise StepError(f"Sandbox '{e.name}' has no committed backup in this run; nothing was deleted.")
        try:
            manifest = load_manifest(Path(backup))
        except StoreError as exc:
            raise StepError(f"The backup {backup} of '{e.name}' cannot be read: {exc}; nothing was deleted.") from None
        image = manifest.sandbox_image or e.image
        if not image:
            raise StepError(f"The backup {backup} does not record the image of '{e.name}'; pass --image {e.name}=REF.",
                            exit_code=2)
        if unusable_on_01(images.get(e.name, image)):
            blocked.append(f"'{e.name}' runs {image}, which OpenShell 0.0.x built from a Dockerfile; OpenShell 0.1 "
                           f"does not build Dockerfiles: build and tag that image yourself and pass --image {e.name}=REF")
        phase = listing.phases.get(e.name) if e.name not in listing.ready else None
        entries.append(PlannedSandbox(
            name=e.name, registry=str(e.registry), key=e.key or e.name, row=_row(e), agent=e.agent,
            agent_version=manifest.agent_version or e.agent_version, image=image, backup=str(backup),
            phase=phase if phase in (STOPPED, ERROR) else None, new_image=images.get(e.name)))
    if blocked:
        raise StepError("Not migrating, nothing was deleted: " + "; ".join(blocked) + ".", exit_code=1)
    cli = ctx.fact("cli_version") or "0.0.x"
    plan = MigrationPlan(run=ctx.run_id, created=now_stamp(), from_version=cli, stage=PREPARING, sandboxes=entries)
    save_plan(ctx.paths.nemoclaw_dir, plan)
    ctx.event("migration_planned", plan=str(plan_path(ctx.paths.nemoclaw_dir)), sandboxes=[s.name for s in entries])
    out = ctx.out
    out.say(f"Recorded the migration plan in {plan_path(ctx.paths.nemoclaw_dir)}:")
    for s in entries:
        was = f" (phase {s.phase})" if s.phase else ""
        out.say(f"{s.name}{was}  {s.new_image or s.image}  backup {s.backup}", indent=4)


def _ask(ctx: "RunContext", prompt: str) -> bool | None:
    """y/N on a terminal; None when there is no terminal to ask on."""
    from ..engine.output import write_safely

    if not (sys.stdin and not sys.stdin.closed and sys.stdin.isatty()):
        return None
    write_safely(ctx.out.stderr if ctx.out.json_mode else ctx.out.stdout, prompt)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@implements("confirm_migration")
def confirm_migration(ctx: "RunContext") -> str:
    """Ask before deleting (unless --yes); no answer, or no terminal to ask on, deletes nothing."""
    plan = _plan_or_fail(ctx)
    assert plan is not None
    if ctx.option("yes"):
        return "next"
    answer = _ask(ctx, f"  Delete these {len(plan.sandboxes)} sandbox(es) from OpenShell {plan.from_version} now? "
                       "They are recreated from their backups after OpenShell 0.1 is installed. [y/N]: ")
    if answer:
        return "next"
    kept = close_plan(ctx.paths.nemoclaw_dir, "declined")
    how = "Not confirmed" if answer is False else "No terminal to confirm on (pass --yes)"
    ctx.out.say(f"{how}: no sandbox was deleted; the backups are kept (the plan was kept as {kept}).", err=True)
    return "declined"


def _delete(name: str) -> tuple[bool, str]:
    """`openshell sandbox delete NAME`; (deleted, output). Not listed any more counts as deleted."""
    from ..adapters.openshell.lifecycle import run_lifecycle
    from .rebuild import _live

    result = run_lifecycle("delete", name)
    if result.status == 0:
        return True, result.output
    listed, _ = _live(name)
    return (not listed), result.output


@implements("delete_for_migration")
def delete_for_migration(ctx: "RunContext") -> None:
    """Delete each planned sandbox through the 0.0.x CLI (its identity checked first), marking it
    deleted in the plan after each; then the plan waits for OpenShell 0.1. Idempotent."""
    from .registry import verify_identity

    out = ctx.out
    plan = _plan_or_fail(ctx)
    if plan is None:
        raise StepError("The migration plan is gone; nothing was deleted. Run `nemoclaw migrate-openshell` again.")
    cli = installed_openshell_version()
    if line_of(cli) != "0.0.x":
        raise StepError(f"The installed OpenShell CLI is {cli or 'unknown'}, not 0.0.x: not deleting with it; "
                        "reinstall the 0.0.x CLI or run `nemoclaw migrate-openshell --check`.")
    for s in plan.sandboxes:
        if s.state != BACKED_UP:
            continue
        verify_identity(ctx, s.name, absent_ok=True)
        out.say(f"Deleting sandbox '{s.name}' on OpenShell {cli} (its backup: {s.backup})...")
        deleted, output = _delete(s.name)
        if not deleted:
            raise StepError(f"Deleting sandbox '{s.name}' failed: {' '.join(output.split())[:200]}; the sandboxes "
                            "not yet deleted are untouched. Run `nemoclaw migrate-openshell` again to go on.")
        plan = plan.with_entry(s.name, state=DELETED)
        save_plan(ctx.paths.nemoclaw_dir, plan)
        ctx.event("sandbox_deleted", sandbox=s.name, image=s.image, backup=s.backup)
        pause_point(ctx, "migrate_delete", s.name)  # test hook: one deleted, the plan says so
    if plan.stage != WAITING:
        plan = attrs.evolve(plan, stage=WAITING, waiting_since=now_stamp())
        save_plan(ctx.paths.nemoclaw_dir, plan)
    ctx.event("migration_waiting", sandboxes=plan.names())
    out.say(f"Deleted {len(plan.sandboxes)} sandbox(es) on OpenShell {plan.from_version}; their backups are kept:")
    for s in plan.sandboxes:
        out.say(f"{s.name}  {s.backup}", indent=4)
    _say_next_steps(out, plan)


# --- finish and abort -------------------------------------------------------------------------------

@implements("migration_items")
def migration_items(ctx: "RunContext") -> str:
    """The planned sandboxes still to recreate (finish: on 0.1.x; --abort: on 0.0.x, the ones the
    listing lacks); the plan's stage says which, so a killed run resumes the same."""
    plan = _plan_or_fail(ctx)
    if plan is None:
        ctx.put("to_migrate", [])
        return "none"
    aborting = bool(ctx.option("abort")) or plan.stage == ABORTING
    stage = ABORTING if aborting else FINISHING
    if aborting:
        listing = ctx.fact("sandbox_list", None)
        live = set(listing.live) if listing is not None else set()
        items = [s.name for s in plan.sandboxes if s.state != RESTORED and s.name not in live]
        done = [s.name for s in plan.sandboxes if s.state != RESTORED and s.name in live]
        for name in done:
            plan = plan.with_entry(name, state=RESTORED)
            ctx.out.say(f"Sandbox '{name}' was not deleted; nothing to put back.")
    else:
        items = [s.name for s in plan.sandboxes if s.state != MIGRATED]
    if plan.stage != stage or aborting:
        plan = attrs.evolve(plan, stage=stage)
        save_plan(ctx.paths.nemoclaw_dir, plan)
    ctx.put("to_migrate", items)
    return "next" if items else "none"


@implements("migration_target")
def migration_target(ctx: "RunContext") -> str:
    """One planned sandbox as a rebuild plan: recreated from its backup, same name, its image (or
    the --image replacement on 0.1.x); the agent version it had is the one it must run again."""
    name = str(ctx.option("name"))
    plan = _plan_or_fail(ctx)
    entry = plan.entry(name) if plan is not None else None
    if plan is None or entry is None:
        raise StepError(f"Sandbox '{name}' is not in a migration plan ({plan_path(ctx.paths.nemoclaw_dir)}).",
                        exit_code=1)
    aborting = plan.stage == ABORTING
    if entry.state == (RESTORED if aborting else MIGRATED):
        ctx.out.say(f"Sandbox '{name}' is recreated already.")
        return "already"
    try:
        load_agent(entry.agent)
    except StoreError as exc:
        raise StepError(str(exc), exit_code=2) from None
    if aborting:
        image = entry.image
    else:
        image = parse_images(ctx.option("image")).get(name) or entry.new_image or entry.image
        if unusable_on_01(image):
            raise StepError(f"Sandbox '{name}' ran {image}, which OpenShell 0.0.x built from a Dockerfile; OpenShell "
                            f"0.1 does not build Dockerfiles: build and tag that image yourself, then run "
                            f"`nemoclaw migrate-openshell --image {name}=REF`. Its backup is kept in {entry.backup}.")
    # expected: the agent version the backup was taken from; the same image must report it again
    # (with a replacement image, whatever that image declares is accepted).
    expected = entry.agent_version if image == entry.image else None
    rebuild = RebuildPlan(name, entry.agent, entry.agent_version, expected, entry.image, image,
                          from_backup=entry.backup, phase=entry.phase)
    ctx.put("rebuild_plan", rebuild)
    ctx.put("committed", {name: entry.backup})
    where = "0.0.x, as before" if aborting else "0.1.x"
    ctx.out.say(f"Recreating sandbox '{name}' on OpenShell {where} from {image}, with its backup {entry.backup}")
    return "next"


@implements("record_migrated")
def record_migrated(ctx: "RunContext") -> None:
    """The registry row gets the agent version checked in the new sandbox (every other field is
    kept; the fingerprint followed the new id at the restore), and the plan marks the sandbox
    recreated. Idempotent."""
    from .registry import record_agent_version

    rebuild: RebuildPlan = ctx.fact("rebuild_plan")
    plan = _plan_or_fail(ctx)
    if plan is None:
        raise StepError("The migration plan is gone; the registry row was not updated.")
    aborting = plan.stage == ABORTING
    if rebuild.expected or rebuild.current:
        record_agent_version(ctx, rebuild.name, str(rebuild.expected or rebuild.current))
    save_plan(ctx.paths.nemoclaw_dir, plan.with_entry(rebuild.name, state=RESTORED if aborting else MIGRATED))
    where = "put back on OpenShell 0.0.x" if aborting else "recreated on OpenShell 0.1"
    note = " (it was in phase Error before; it runs now)" if rebuild.phase == ERROR else ""
    note = note or (" and Stopped again" if rebuild.phase == STOPPED else "")
    ctx.out.ok(f"Sandbox '{rebuild.name}' {where} from its backup{note}")


@implements("migration_report")
def migration_report(ctx: "RunContext") -> str:
    """Count what was recreated; close the plan when every sandbox is back (backups are kept)."""
    results = ctx.fact("item_results", {})
    plan = _plan_or_fail(ctx)
    if plan is None:  # closed already by the run this one resumes
        ctx.out.say("The migration plan is closed already.")
        return "next"
    aborting = plan.stage == ABORTING
    done_state = RESTORED if aborting else MIGRATED
    failed = [s.name for s in plan.sandboxes if s.state != done_state]
    recreated = [MigratedSandbox(s.name, s.new_image or s.image if not aborting else s.image, s.backup, s.phase)
                 for s in plan.sandboxes if s.state == done_state and s.name in results]
    cli = installed_openshell_version()
    out = ctx.out
    kept = None
    if not failed:
        kept = close_plan(ctx.paths.nemoclaw_dir, "aborted" if aborting else "done")
        what = "put back on OpenShell" if aborting else "migrated to OpenShell"
        out.say(f"{len(plan.sandboxes)} sandbox(es) {what} {cli}; the backups are kept, the plan in {kept}.")
        for s in plan.sandboxes:
            if s.phase == ERROR:
                out.say(f"Sandbox '{s.name}' was in phase Error on OpenShell {plan.from_version}; it runs now.")
    else:
        out.say(f"{len(failed)} sandbox(es) not recreated yet: {', '.join(failed)}. Their backups are kept; "
                  "run `nemoclaw migrate-openshell" + (" --abort" if aborting else "") + "` again to retry them.", err=True)
    ctx.put("migration_report", MigrationReport("abort" if aborting else "finish", cli, recreated, failed,
                                                str(kept) if kept else None))
    return "partial" if failed else "next"
