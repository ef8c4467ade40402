"""`prune_backups`, `verify_backups`, `restore_backup`: the local backup store as workflow steps,
doing what `nemoclaw backups prune|verify|restore` do (the same functions: BackupStore.prune,
steps/_backup_ops.py), so a user's YAML can compose backup -> prune -> verify
(docs/backups.md, "In a workflow").

Each ends with `next`; what it finds wrong (a damaged or invalid backup, no backup, a sandbox
that cannot be restored into) fails the state with one sentence saying what and what to do.

The writer lock. A run of a workflow with `lock: true` (the default) already holds the
single-writer lock (engine/run.py): the same file and the same `WriterLock` the commands take
(cli/writer_lock.py), so these steps never take it again (their own flock would refuse them as
if another run held it). The two that change the store or a sandbox refuse to run unless this
process holds it: a workflow with `lock: false`, or a read-only run, has not resumed interrupted
runs (a half-done rebuild) and holds no lock against a concurrent writer. Verifying only reads,
as `backups verify` does without the lock.

After a kill. prune_backups is `resume: retry`: pruning again removes exactly what the first
prune would have (BackupStore.prune) and finishes a removal cut short. restore_backup is
`resume: retry` too: restoring again makes each restored directory equal to the backup; the
backup it chose is journaled before it writes (`backup_restore_chosen`), and a resumed state
restores that same one, even if `latest` would now mean another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..engine.journal import read_journal
from ..engine.registry import implements
from ..kernel.errors import StepError, StoreError
from ..store import LATEST, InvalidBackup, held_here
from ._backup_ops import NotRestorable, choose_for_restore, open_store, prune_lines, restore_into, restore_target, \
    scan, verify_slots
from ._kill_points import pause_point
from .store_facts import BackupSlot, DamagedBackup, Pruned, PruneReport, VerifiedBackup, VerifyReport

if TYPE_CHECKING:
    from ..engine.context import RunContext

CHOSEN_EVENT = "backup_restore_chosen"


def _need_lock(ctx: "RunContext", step: str) -> None:
    """Refuse (nothing changed) unless this run holds the writer lock; see the module docstring."""
    if held_here(ctx.paths.lock_file):
        return
    if ctx.read_only:
        raise StepError(f"Refusing to run '{step}': this run is read-only (--{ctx.workflow.read_only_when}).")
    raise StepError(f"Step '{step}' changes backups or sandboxes, so its run must hold the writer lock; remove "
                    f"`lock: false` from workflow '{ctx.workflow.name}'.")


def _sandbox(ctx: "RunContext", default: str | None) -> str | None:
    """`with.sandbox` with `{option}` fields filled in (e.g. `{name}`), else `default`."""
    raw = ctx.params.get("sandbox", default)
    return None if raw is None else ctx.fill(str(raw))


def _prune_advice(_facts: dict[str, Any], state: str) -> list[str]:
    return [f"  State '{state}' was pruning backups: what it removed is gone whole, the older backups it had not "
            "removed yet are still there and valid; `nemoclaw backups prune --keep N` finishes the job."]


def _restore_advice(_facts: dict[str, Any], state: str) -> list[str]:
    return [f"  State '{state}' was restoring a backup into the sandbox: its restored directories may be half "
            "written. Restore it again with `nemoclaw backups restore <sandbox> --from <timestamp>`, the backup "
            f"named by this run's `{CHOSEN_EVENT}` event (`nemoclaw runs show <run>`)."]


@implements("prune_backups", advice=_prune_advice)
def prune_backups(ctx: "RunContext") -> None:
    """Keep the `with.keep` newest backups of each sandbox (of `with.sandbox`), never removing
    one's newest backup that verifies; fails after pruning when a kept backup is damaged."""
    keep = ctx.params.get("keep")
    if keep is None:
        raise StepError("Step 'prune_backups' needs the number of backups to keep: add `with: {keep: N}`.",
                        exit_code=2)
    if keep < 0:
        raise StepError(f"Step 'prune_backups' keeps 0 or more backups per sandbox, not {keep}.", exit_code=2)
    sandbox = _sandbox(ctx, None)
    _need_lock(ctx, "prune_backups")
    store = open_store(ctx.paths)
    if sandbox is not None and ctx.resumed_from is None and not scan(store, sandbox).backups:
        # (a resumed run may have removed the last ones before it was killed: nothing is wrong then)
        raise StepError(f"No backups of '{sandbox}' found in {store.root}; nothing to prune.", exit_code=1)

    def removed(b: Any) -> None:
        ctx.event("backup_pruned", sandbox=b.sandbox, timestamp=b.timestamp)
        pause_point(ctx, "prune", b.sandbox)  # test hook: one backup removed, the others not yet

    try:
        result = store.prune(keep, sandbox=sandbox, on_removed=removed)
    except (StoreError, OSError) as exc:  # a symlinked folder, a removal the disk refused
        raise StepError(f"Pruning backups in {store.root} failed: {exc}", exit_code=2 if isinstance(exc, StoreError)
                        else None) from None
    for line, problem in prune_lines(result):
        ctx.out.say(line, err=problem)
    removed_now = {(b.sandbox, b.timestamp) for b in result.removed}
    damaged = [(b, m) for b, m in result.failed_verify if (b.sandbox, b.timestamp) not in removed_now]
    ctx.put("prune_report", PruneReport(Pruned(
        removed=[BackupSlot(b.sandbox, b.timestamp) for b in result.removed],
        kept=[BackupSlot(b.sandbox, b.timestamp) for b in result.kept],
        protected=[BackupSlot(b.sandbox, b.timestamp) for b in result.protected],
        damaged=[DamagedBackup(b.sandbox, b.timestamp, str(m)) for b, m in result.failed_verify])))
    if damaged:
        names = ", ".join(f"{b.sandbox} {b.timestamp}" for b, _ in damaged)
        raise StepError(f"{len(damaged)} kept backup(s) are damaged ({names}): see `nemoclaw backups verify --all`, "
                        "and remove or replace them.", exit_code=1)


@implements("verify_backups")
def verify_backups(ctx: "RunContext") -> None:
    """Re-hash the newest backup of each sandbox (of `with.sandbox`; every backup with
    `with.all`) against its manifest; fails naming each damaged or invalid one."""
    sandbox = _sandbox(ctx, None)
    sample = ctx.params.get("sample")
    if sample is not None and not 0 < sample <= 100:
        raise StepError(f"Step 'verify_backups' re-hashes a sample of more than 0 and at most 100 percent, not {sample}.",
                        exit_code=2)
    found = verify_slots(open_store(ctx.paths), sandbox, every=bool(ctx.params.get("all")),
                         sample=None if sample is None else float(sample))
    out = ctx.out
    for v in found:
        t = v.slot
        if isinstance(t, InvalidBackup) or not v.ok:
            out.error(f"  ✗ {t.sandbox} {t.timestamp}: {v.problem}")
        elif sample is None:
            out.line(f"  ✓ {t.sandbox} {t.timestamp}: {len(t.manifest.files)} files match the manifest")
        else:
            out.line(f"  ✓ {t.sandbox} {t.timestamp}: all {len(t.manifest.files)} files present with their sizes; "
                     f"a {sample:g} % sample re-hashed matches")
        ctx.event("backup_verified", sandbox=t.sandbox, timestamp=t.timestamp, ok=v.ok, problem=v.problem)
    ctx.put("verify_report", VerifyReport([
        VerifiedBackup(v.slot.sandbox, v.slot.timestamp, str(v.path), v.ok, v.problem,
                       None if sample is None else float(sample)) for v in found]))
    bad = [v for v in found if not v.ok]
    if bad:
        names = ", ".join(f"{v.slot.sandbox} {v.slot.timestamp} ({v.path})" for v in bad)
        raise StepError(f"{len(bad)} of {len(found)} backup(s) failed verification: {names}.", exit_code=1)


@implements("restore_backup", advice=_restore_advice)
def restore_backup(ctx: "RunContext") -> None:
    """Write backup `with.timestamp` (default `latest`, the newest) of sandbox `with.sandbox`
    (default the run's `name` option) into that running sandbox and read it back."""
    name = _sandbox(ctx, "{name}") or ""
    if "{" in name:
        raise StepError("Step 'restore_backup' needs the sandbox to restore: add `with: {sandbox: <name>}`, or a "
                        "`name` argument to the workflow.", exit_code=2)
    asked = ctx.fill(str(ctx.params.get("timestamp") or LATEST))
    _need_lock(ctx, "restore_backup")
    resumed = _interrupted_choice(ctx, name)
    store = open_store(ctx.paths)
    try:
        chosen = choose_for_restore(store, name, resumed or asked)
    except NotRestorable as exc:
        if exc.fallback is None:
            raise
        raise NotRestorable(f"{exc}; the newest valid backup is {exc.fallback.timestamp}: to restore it, set "
                            f"`timestamp: {exc.fallback.timestamp}` in this state's `with:`.") from None
    if resumed is not None:
        ctx.out.say(f"Restoring '{name}' again from {resumed}, the backup the interrupted run was restoring.")
    args = " ".join(str(ctx.options[a.name]) for a in ctx.workflow.arguments if ctx.options.get(a.name) is not None)
    container = restore_target(name, paths=ctx.paths, rerun=f"nemoclaw {ctx.workflow.name} {args}".rstrip())
    ctx.event(CHOSEN_EVENT, sandbox=name, timestamp=chosen.timestamp, path=str(chosen.path))
    ctx.out.say(f"Restoring {chosen.timestamp} into '{name}' ({len(chosen.manifest.files)} files)...")

    def on_progress(_bytes: int, files: int) -> None:
        if files:
            pause_point(ctx, "restore", name)  # test hook: the upload is under way

    result = restore_into(container, name, chosen, on_progress=on_progress)
    ctx.event("backup_restored", sandbox=name, timestamp=chosen.timestamp, files=result.files, bytes=result.bytes)
    ctx.out.ok(f"Restored '{name}' from {chosen.timestamp}; {result.files} files verified in the sandbox.")


def _interrupted_choice(ctx: "RunContext", name: str) -> str | None:
    """The backup an interrupted attempt of this run chose for `name` and may have half
    written (its `backup_restore_chosen` with no `state_left` after it), for a resumed run."""
    if ctx.resumed_from is None or ctx.journal.path is None:
        return None
    events, _damaged = read_journal(ctx.journal.path)
    chosen: str | None = None
    for e in events:
        if e.get("run") != ctx.run_id:
            continue
        if e.get("event") == CHOSEN_EVENT and e.get("sandbox") == name:
            chosen = str(e.get("timestamp"))
        elif e.get("event") == "state_left":
            chosen = None
    return chosen
