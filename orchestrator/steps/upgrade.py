"""upgrade-sandboxes: classify sandboxes by agent version, confirm, report
(docs/reference/nemoclaw-commands.md).

`classify_versions` reads the `registry` and `sandbox_list` facts and writes `version_report`;
with `--check` it only reports (it changes nothing) and ends `checked` (exit 1) when anything
needs doing, `current` (exit 0) only with "All sandboxes are up to date." (NemoClaw #10211).
A registered sandbox the gateway does not list is *missing*, never "stopped"; so is one it lists
(phase Error) whose container was deleted. A sandbox in
phase Stopped or Error is classified without starting it (the registry's recorded version, else
its image's labels: adapters/agents/version.py) and rebuilt like a running one: its backup is
read from its stopped container, and a Stopped one ends Stopped (steps/rebuild.py). A *pinned* one
(its registry row's `fromImage`, else its container's image, is `repository@sha256:<digest>`,
NemoClaw v0.0.129) is listed with its digest and is never stale, never work for `--check` and
never rebuilt automatically (docs/reference/nemoclaw-registry.md). A registry row that cannot be
acted on is an error for its sandbox (`--check` exits 1), never a silent skip.

A running sandbox whose container could not be reached (no Docker engine) is reported with
that reason, never told to be started, and makes `--check` exit 1: it could not check. While
another run holds the writer lock (e.g. mid-rebuild), a sandbox that is not running is said
to be possibly held by that run, not just "stopped".
`confirm_rebuilds` writes `to_rebuild`, the names a `foreach` state rebuilds; `rebuild_report`
reads that state's `item_results`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ..adapters.agents.version import VersionCheck, check_version
from ..kernel.errors import StepError
from ..store.migration_plan import migrating, pending_note
from ..engine.registry import implements
from ..engine.output import Span
from ..adapters.nemoclaw_registry import SandboxEntry, pinned_digest
from ..adapters.openshell.lifecycle import ERROR, NOT_RUNNING_PHASES
from ..adapters.sandbox_containers import stopped_workload
from ..adapters.agents.definitions import load_agent
from ..store.errors import StoreError
from ..store.lock import read_lock
from ._openshell_common import listed_container
from ._pause_records import frozen_by_runs
from .facts import ITEM_RESULTS, MissingSandbox, PinnedSandbox, REBUILD_SUMMARY, REGISTRY, RebuildSummary, RefusedSandbox, SANDBOX_LIST, TO_REBUILD, VERSION_REPORT, VersionReport, VersionRow
from .rebuild import latest_verified_backup

if TYPE_CHECKING:
    from ..engine.context import RunContext


def _not_running(frozen: dict[str, tuple[str, bool]], name: str, lock_note: str | None, phase: str | None = None) -> str:
    """Why a sandbox does not count as running: frozen by a backup (a live one, or a killed one
    that left it so), held by the run that holds the lock, stopped, or failed (phase Error)."""
    if name in frozen:
        run_id, alive = frozen[name]
        return f"frozen by run {run_id} while it is backed up" if alive else f"frozen by interrupted run {run_id}"
    if lock_note:
        return lock_note
    if phase is not None and phase not in NOT_RUNNING_PHASES:
        return f"not running; phase {phase}"
    return "stopped; phase Error" if phase == ERROR else "stopped"


@implements("classify_versions")
def classify_versions(ctx: "RunContext") -> str:
    """Sort sandboxes into stale / unknown / current / missing; print the report (and stop
    there with --check: `checked` when anything needs doing, which exits 1)."""
    out = ctx.out
    registry: list[SandboxEntry] = ctx.get(REGISTRY)
    listing = ctx.get(SANDBOX_LIST)
    live, ready = set(listing.live), set(listing.ready)
    checks: list[VersionCheck] = []
    missing: list[MissingSandbox] = []
    held = {i.subject_value: i.run_id for i in ctx.interrupted if i.subject_value}
    why: dict[str, str] = {}  # running sandboxes whose container could not be reached, and why
    phases: dict[str, str] = {}  # listed sandboxes that do not run, by phase (Stopped/Error: rebuilt without being started)
    holder = _live_lock_holder(ctx)
    migration = pending_note(ctx.paths.nemoclaw_dir)  # a migration to OpenShell 0.1 waiting or under way
    if migration:
        out.line(migration)
    pinned: list[PinnedSandbox] = []
    refused = [RefusedSandbox(e.name, e.problem) for e in registry if e.problem]
    for entry in registry:
        if entry.problem:
            continue  # an error for that sandbox alone (reported below), never a silent skip
        try:
            agent = load_agent(entry.agent)
        except StoreError as exc:
            raise StepError(str(exc), exit_code=2) from None
        if entry.name not in live or (entry.name not in ready and _container_gone(listing, entry.name)):
            missing.append(MissingSandbox(entry.name, _latest_backup(ctx, entry.name), held.get(entry.name)))
            continue
        container = None
        if entry.name in ready:
            try:
                # By the listing's id: --check writes nothing, not even the CLI's last-used
                # sandbox (NemoClaw #7279).
                container = listed_container(ctx, entry.name)
            except StepError as exc:
                container = None
                why[entry.name] = str(exc).strip().split(": ", 1)[0] if "Docker engine" in str(exc) else str(exc).strip()
        stopped = None
        phase = listing.phases.get(entry.name)
        if entry.name not in ready and phase:
            phases[entry.name] = phase
        if entry.name not in ready and phase in NOT_RUNNING_PHASES:
            # Never started to be asked: the registry's version, else its image's (no exec).
            stopped = stopped_workload(entry.name, listing.ids.get(entry.name), listing.workspaces.get(entry.name))
        pin = _pinned(entry, container if container is not None else stopped)
        if pin is not None:
            pinned.append(pin)  # its own category: never stale, never work for --check
            continue
        check = check_version(entry, agent, container, stopped=stopped)
        if entry.name in ready and container is None:
            check = VersionCheck(entry.name, True, agent.expected_version, None)
        checks.append(check)
    stale = [c for c in checks if c.stale]
    unknown = [c for c in checks if not c.stale and c.unknown]
    report = VersionReport(
        stale=[VersionRow(c.name, c.current, c.expected, c.running, phases.get(c.name)) for c in stale],
        unknown=[VersionRow(c.name, None, c.expected, c.running, phases.get(c.name)) for c in unknown],
        current=[c.name for c in checks if c not in stale and c not in unknown],
        missing=missing,
        pinned=pinned,
        refused=refused,
    )
    ctx.set(VERSION_REPORT, report)
    _report_pinned_and_refused(ctx, pinned, refused)
    if not stale and not unknown and not missing and not refused:
        if ctx.interrupted or migration:
            return "attention"
        out.say("All sandboxes are up to date." if not pinned else
                "All other sandboxes are up to date; pinned sandboxes keep their digest.")
        return "current"
    lock_note = f"not running; run {holder.run_id} (pid {holder.pid}) holds the lock and may be rebuilding it" if holder else None
    frozen = frozen_by_runs(ctx)  # frozen by a backup: not "stopped"
    if stale:
        out.line("")
        out.say("Stale sandboxes:", tone="title")
        for c in stale:
            state = (Span("running", "good") if c.running
                     else Span(_not_running(frozen, c.name, lock_note, phases.get(c.name)), "dim"))
            out.say((f"{c.name}  v{c.current or '?'} → v{c.expected}  (", state, ")"), indent=4, sandbox=c.name)
    if unknown:
        out.line("")
        out.say("Unknown version:", tone="alert")
        for c in unknown:
            status = "running" if c.running else _not_running(frozen, c.name, lock_note, phases.get(c.name))
            if c.name in why:
                status += f"; could not probe: {why[c.name]}"
            out.say(f"{c.name}  v? → v{c.expected}  ({status})", indent=4, sandbox=c.name)
    if missing:
        out.line("")
        report_missing(ctx, missing)
    out.line("")
    if ctx.option("check"):
        if stale:
            out.say(f"{len(stale)} sandbox(es) need upgrading.")
        unreachable = [c for c in unknown if c.name in why]
        others = [c for c in unknown if c.name not in why]
        if others:
            out.say(f"{len(others)} sandbox(es) could not be version-checked; start them and rerun, or rebuild manually.")
        if unreachable:
            reasons = "; ".join(sorted({why[c.name] for c in unreachable}))
            out.say(f"{len(unreachable)} running sandbox(es) could not be version-checked: {reasons}. Fix that and rerun.", err=True)
        if holder:
            out.say(f"Another run ({holder.run_id}, pid {holder.pid}) holds the lock: sandboxes it is rebuilding may "
                    "show as not running. Rerun --check when it has finished.")
        if stale or unknown:
            out.say("Run `nemoclaw upgrade-sandboxes` to rebuild them.")
        if refused:
            out.say(f"{len(refused)} sandbox(es) could not be checked: their registry rows are wrong (see above).", err=True)
        return "checked"
    if not stale:
        return "attention"
    return "next"


def _container_gone(listing: Any, name: str) -> bool:
    """Listed but without any container (deleted behind the gateway's back): Docker's container
    list, never an inspect; no engine to ask means it is not known to be gone."""
    from ..adapters.sandbox_containers import has_container

    try:
        return not has_container(name, listing.ids.get(name))
    except StepError:
        return False


def _pinned(entry: SandboxEntry, container: Any | None) -> PinnedSandbox | None:
    """A sandbox whose recorded image (its registry row's, else its container's) is a digest."""
    image = entry.image
    if image is None and container is not None:
        image = container.attrs.get("Config", {}).get("Image")
    pin = pinned_digest(image)
    return PinnedSandbox(entry.name, *pin) if pin else None


def _report_pinned_and_refused(ctx: "RunContext", pinned: list[PinnedSandbox], refused: list[RefusedSandbox]) -> None:
    out = ctx.out
    if pinned:
        out.line("")
        out.say((Span("Pinned sandboxes", "title"), " (kept on their image digest, not rebuilt automatically; "
                "`nemoclaw rebuild-sandbox NAME` rebuilds one from the same digest):"))
        for p in pinned:
            out.say(f"{p.sandbox}  {p.repository}@{p.digest}  (pinned)", indent=4)
    for r in refused:
        out.fail(f"{r.sandbox}: {r.problem}", sandbox=r.sandbox)


def _live_lock_holder(ctx: "RunContext") -> Any:
    """The live run holding the writer lock (a read-only --check takes none), or None."""
    holder = read_lock(ctx.paths.lock_file)
    if holder is None or holder.run_id == ctx.run_id or not holder.is_alive():
        return None
    return holder


def _latest_backup(ctx: "RunContext", name: str) -> str | None:
    path = latest_verified_backup(ctx.paths.backups_root, name)
    return str(path) if path is not None else None


def report_missing(ctx: "RunContext", missing: list[MissingSandbox]) -> None:
    """Upstream's line for registered sandboxes the gateway does not list, then per sandbox
    what holds it or how to recreate it (never "stopped": it is not there)."""
    out = ctx.out
    out.say(f"{len(missing)} recorded sandbox(es) were not found on their recorded gateway: "
            f"{', '.join(m.sandbox for m in missing)}.")
    for m in missing:
        if m.sandbox in migrating(ctx.paths.nemoclaw_dir):
            out.say(f"{m.sandbox}: deleted by the migration to OpenShell 0.1 and kept in its backup; "
                    "`nemoclaw migrate-openshell` recreates it.", indent=4)
        elif m.held_by:
            out.say(f"{m.sandbox}: interrupted run {m.held_by} was working on it; "
                    f"finish it with `nemoclaw runs resume {m.held_by}`.", indent=4)
        elif m.backup:
            out.say(f"{m.sandbox}: latest verified backup {m.backup}; recreate it with "
                    f"`nemoclaw rebuild-sandbox {m.sandbox} --from-backup latest`.", indent=4)
        else:
            out.say(f"{m.sandbox}: no verified backup was found in {ctx.paths.backups_root / m.sandbox}.", indent=4)


@implements("confirm_rebuilds")
def confirm_rebuilds(ctx: "RunContext") -> str:
    """Pick the stale sandboxes that are running or not running (phase Stopped or Error: rebuilt
    from their stopped container, NemoClaw #12173/#12305), asking per sandbox unless --yes/--auto.
    One in any other state (frozen by another run, being provisioned) is skipped, and said so."""
    out = ctx.out
    stale = ctx.get(VERSION_REPORT).stale
    rebuildable = [c for c in stale if c.running or c.phase in NOT_RUNNING_PHASES]
    others = [c for c in stale if c not in rebuildable]
    if others:
        out.say(f"Skipping {len(others)} sandbox(es) that are neither running nor stopped: "
                f"{', '.join(c.sandbox for c in others)}; rerun when they are.", tone="dim")
    chosen: list[str] = []
    if not rebuildable:
        out.say("No running stale sandboxes to rebuild.")
        ctx.set(TO_REBUILD, chosen)
        return "none"
    skip_confirm = bool(ctx.option("yes") or ctx.option("auto"))
    for c in rebuildable:
        if not skip_confirm and not _ask(ctx, f"  Rebuild '{c.sandbox}'? [y/N]: "):
            out.say(f"Skipped '{c.sandbox}'.")
            continue
        chosen.append(c.sandbox)
    ctx.set(TO_REBUILD, chosen)
    return "next" if chosen else "none"


def _ask(ctx: "RunContext", prompt: str) -> bool:
    from ..engine.output import write_safely

    stream = ctx.out.stderr if ctx.out.json_mode else ctx.out.stdout
    if not write_safely(stream, prompt):  # nobody reads stdout (`| head`): ask on stderr
        write_safely(ctx.out.stderr, prompt)
    answer = sys.stdin.readline() if sys.stdin and not sys.stdin.closed else ""
    return answer.strip().lower() in ("y", "yes")


@implements("rebuild_report")
def rebuild_report(ctx: "RunContext") -> str:
    """Summarize the per-sandbox rebuilds of a foreach state (missing sandboxes count as not done)."""
    out = ctx.out
    results = ctx.get(ITEM_RESULTS)
    rebuilt = [n for n, r in results.items() if r.exit_code == 0]
    failed = [n for n, r in results.items() if r.exit_code != 0]
    for name in failed:
        r = results[name]
        out.warn(f"Failed to rebuild '{name}': {r.message or r.reason or r.terminal}", sandbox=name)
    out.line("")
    if rebuilt:
        out.ok(f"{len(rebuilt)} sandbox(es) rebuilt.")
    if failed:
        out.warn(f"{len(failed)} sandbox(es) failed — see errors above.", err=False)
    ctx.set(REBUILD_SUMMARY, RebuildSummary(rebuilt, failed))
    missing = ctx.get(VERSION_REPORT, None)
    return "partial" if failed or (missing is not None and (missing.missing or missing.refused)) else "next"
