"""Finishing interrupted runs: find them in the journals, resume them, report or abandon them.

A run is *interrupted* when its journal has no `run_finished` (nor `run_abandoned`) and the
process that owns it is dead (killed, or stopped by SIGINT/SIGTERM in a state that changes the
world: engine/run.py). One whose journal has a line that cannot be read, or a fact that does
not fit its type, is *damaged*: it is never resumed (what the unreadable line said is not
known), and a mutating command refuses until it is abandoned. Resuming it rebuilds its context from the journal alone (options,
facts, the last failure) and continues where it stopped: in the interrupted state (or the one it was
about to enter), run again (`resume: retry`, the default) or in the state its `resume:` names. A guarded workflow first runs its preflight again: a gateway
that drifted since must not be trusted with the rest of the job (a refused resume changes
nothing and stays resumable).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import attrs

from ..kernel.paths import Paths
from ..kernel.owner import Owner
from ..workflow.discover import subject_of
from ..workflow.spec import StateSpec, WorkflowSpec
from .context import RunContext
from .drive import discard, drive, finish, new_context, run_step
from ..kernel.errors import DefinitionError, Refusal, StepError
from .facts import load as load_fact
from .journal import Damaged, Journal, Replay, ended, load_run, read_journal, replay, run_logs, status_of
from .output import Reporter
from .signals import Interrupted, handling


@attrs.frozen
class InterruptedRun:
    """An interrupted run as `runs list`, `--check` and the resume line describe it."""

    run_id: str
    path: Path
    replay: Replay
    child: Replay | None  # the foreach child it was in, if any
    # Why its journal cannot be trusted whole (empty: it can be resumed).
    damage: tuple[Damaged, ...] = ()
    # The option naming what it works on (its workflow's subject argument, e.g. a sandbox).
    subject_option: str | None = None

    @property
    def damaged(self) -> bool:
        return bool(self.damage)

    @property
    def damage_text(self) -> str:
        """`line 9: not JSON (Expecting value)` (the first damaged lines)."""
        parts = [f"line {d.line}: {d.problem}" if d.line else d.problem for d in self.damage[:3]]
        more = len(self.damage) - 3
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")

    @property
    def subject(self) -> str:
        """`rebuild-sandbox 'alpha'`, or `upgrade-sandboxes` (the workflow and its subject's value)."""
        r = self.child or self.replay
        value = self.subject_value
        workflow = r.workflow or "a workflow whose start cannot be read"
        return f"{workflow} '{value}'" if value else workflow

    @property
    def subject_value(self) -> str | None:
        """What the run works on (e.g. the sandbox of a rebuild), None when its workflow has no
        subject argument."""
        r = self.child or self.replay
        value = r.options.get(self.subject_option) if self.subject_option else None
        return str(value) if value else None

    @property
    def state(self) -> str:
        r = self.child or self.replay
        return r.stopped_in or "?"

    @property
    def since(self) -> str:
        r = self.child or self.replay
        return _short_time(r.in_state_since or r.started or "?")

    def describe(self) -> str:
        return f"{self.subject}, stopped in state '{self.state}' at {self.since}"


def _short_time(ts: str) -> str:
    return ts.replace("T", " ")[:19] + (" UTC" if ts[:4].isdigit() else "")


def fact_check() -> Any:
    """engine/facts.py `load`, with every step library's facts declared (for load_run)."""
    from .registry import load_step_modules

    load_step_modules()
    return load_fact


def describe_run(path: Path) -> InterruptedRun | None:
    """A journal as an InterruptedRun (whatever its status), None when it has no readable start."""
    check = fact_check()
    events, top = load_run(path, check_fact=check)
    if top.workflow is None and not top.damaged:
        return None
    child = None
    if top.in_state is not None:
        open_items = [slot for slot in top.items.values() if slot.get("result") is None and slot.get("child")]
        if open_items:
            _, child = load_run(path, str(open_items[-1]["child"]), check)
    damage = tuple(top.damaged) + tuple(d for d in (child.damaged if child else []) if d not in top.damaged)
    r = child or top
    return InterruptedRun(path.stem, path, top, child, damage, subject_of(r.workflow, r.source))


def find_interrupted(paths: Paths) -> list[InterruptedRun]:
    """Interrupted (and damaged) runs that change things (read-only runs have nothing to
    finish), oldest first."""
    found: list[InterruptedRun] = []
    for path in run_logs(paths.runs_dir):
        if ended(path):
            continue
        events, _ = read_journal(path)
        i = describe_run(path)
        if i is None or status_of(i.replay) not in ("interrupted", "damaged"):
            continue
        started = next((e for e in events if e.get("event") == "run_started" and e.get("run") == path.stem), {})
        if started.get("read_only") or (started.get("workflow") is None and not i.damaged):
            continue
        found.append(i)
    return sorted(found, key=lambda i: i.run_id)


def damaged_line(i: InterruptedRun) -> str:
    """The sentence that names a damaged run and what to do about it."""
    return (f"  Run {i.run_id} ({i.describe()}) has a damaged journal ({i.damage_text}), so it is not resumed: "
            f"see `nemoclaw runs show {i.run_id}`, then `nemoclaw runs abandon {i.run_id}` prints the commands "
            f"that put its sandbox back by hand and gives it up.")


def report_interrupted(paths: Paths, out: Reporter) -> list[InterruptedRun]:
    """For read-only runs: one line per interrupted or damaged run; they make the run end non-zero."""
    found = find_interrupted(paths)
    for i in found:
        if i.damaged:
            out.line(damaged_line(i))
        else:
            out.line(f"  Interrupted run {i.run_id} ({i.describe()}) has not finished.")
    if any(not i.damaged for i in found):
        out.line("  Run `nemoclaw runs resume <id>` (or any backup or upgrade command) to finish it, "
                 "or `nemoclaw runs abandon <id>` to give it up.")
    return found


def resume_all(paths: Paths, out: Reporter, *, debug: bool, by: str, rerun_of: str | None = None) -> bool:
    """Resume every interrupted run, oldest first (the caller holds the writer lock). True when
    each ended in a terminal with exit code 0. Runs of workflow `rerun_of` (one declaring
    `interrupted: rerun`, being run again now) are marked superseded instead."""
    ok = True
    for i in find_interrupted(paths):
        if i.damaged:  # the caller refused already (engine/run.py); never resumed on a guess
            out.error(damaged_line(i))
            ok = False
            continue
        if rerun_of is not None and i.replay.workflow == rerun_of:
            journal = Journal(i.path, i.run_id, warn=out.error)
            try:
                journal.write("run_superseded", by=by)
            finally:
                journal.close()
            out.line(f"  Interrupted run {i.run_id} ({i.describe()}) is superseded: this run does its job again.")
            continue
        out.line(f"  Resuming interrupted run {i.run_id} ({i.describe()})...")
        result = resume(i, paths, out, debug=debug, by=by)
        if result is None or result.exit_code != 0:
            ok = False
    return ok


def _load_spec(r: Replay, paths: Paths) -> WorkflowSpec:
    from .loader import load_by_name

    return load_by_name(str(r.workflow), paths)


def resume(i: InterruptedRun, paths: Paths, out: Reporter, *, debug: bool, by: str) -> Any:
    """Resume one interrupted top-level run in this process; returns its RunResult, or None
    when it could not be resumed (it stays interrupted, and the reason was printed)."""
    r = i.replay
    if i.damaged:
        out.error(damaged_line(i))
        return None
    try:
        spec = _load_spec(r, paths)
    except DefinitionError as exc:
        out.error(f"  Cannot resume run {i.run_id}: its workflow '{r.workflow}' no longer loads:")
        out.lines([f"    {p}" for p in exc.problems], error=True)
        return None
    journal = Journal(i.path, i.run_id, warn=out.error)
    ctx = new_context(spec, r.options, run_id=i.run_id, paths=paths, out=out, journal=journal, debug=debug)
    started = time.monotonic()
    with handling():
        return _resume(i, ctx, spec, r, out, by, started)


def _resume(i: InterruptedRun, ctx: RunContext, spec: WorkflowSpec, r: Replay, out: Reporter, by: str,
            started: float) -> Any:
    journal = ctx.journal
    try:
        if not _restore(ctx, r, out):
            return None
        ctx.event("run_resumed", owner=Owner.current(i.run_id).to_json(), by=by, pid=os.getpid(),
                  host=socket.gethostname(), state=r.stopped_in)
        terminal, reason = _continue(ctx, spec, r)
        if terminal is None:
            return None
        code = ctx.exit_code if ctx.exit_code is not None else spec.exit_code(terminal)
        discard(ctx)
        return finish(ctx, terminal, code, reason, started)
    except (KeyboardInterrupt, Interrupted) as exc:
        name = "SIGINT" if isinstance(exc, KeyboardInterrupt) else signal.Signals(exc.signum).name
        ctx.event("run_interrupted", signal=name)  # not an end: it stays to be finished
        out.error(f"  Interrupted by {name}: run {i.run_id} stays interrupted; the next backup or upgrade command "
                  "finishes it.")
        raise
    finally:
        if ctx.has_staging:
            ctx.staging.discard()
        journal.close()


def continue_child(parent: RunContext, spec: WorkflowSpec, child_id: str) -> tuple[str, int, str | None, str | None]:
    """Resume a foreach child of a resumed parent: (terminal, exit code, reason, message)."""
    events, _ = read_journal(parent.journal.path) if parent.journal.path else ([], [])
    r = replay(events, child_id)
    ctx = new_context(spec, r.options, run_id=child_id, paths=parent.paths, out=parent.out, journal=parent.journal,
                      debug=parent.debug)
    try:
        if not _restore(ctx, r, parent.out):
            return "failed", 1, "resume failed", "its journal could not be read back"
        value = r.options.get(spec.subject, "") if spec.subject else ""
        parent.out.line(f"  Resuming {spec.name} '{value}' in state '{r.stopped_in or spec.initial}'...")
        ctx.event("run_resumed", owner=Owner.current(child_id).to_json(), by=parent.run_id, state=r.stopped_in)
        terminal, reason = _continue(ctx, spec, r)
        if terminal is None:
            return "refused", 1, "refused on resume", "the preflight refused on resume"
        code = ctx.exit_code if ctx.exit_code is not None else spec.exit_code(terminal)
        message = str(ctx.last_error).strip() if ctx.last_error is not None else None
        return terminal, code, reason, message
    finally:
        if ctx.has_staging:
            ctx.staging.discard()


def _restore(ctx: RunContext, r: Replay, out: Reporter) -> bool:
    """Facts and the last failure from the journal; False (said why) when a fact is unreadable."""
    for name, raw in r.facts.items():
        try:
            ctx.facts[name] = load_fact(name, raw)
        except ValueError as exc:
            out.error(f"  Cannot resume run {r.run_id}: its journal is damaged ({exc}).")
            return False
    if r.last_error is not None:
        ctx.last_error, ctx.last_error_state = StepError(r.last_error), r.last_error_state
    ctx.prior_items = r.items if r.in_state is not None else None
    return True


def start_state(spec: WorkflowSpec, r: Replay) -> str:
    """Where a resumed run goes on: the state it stopped in or was about to enter, or where
    that state's `resume:` sends it (a state that was about to start may depend on what the
    crash lost as much as one that had started, e.g. a commit on its staging area)."""
    stopped = r.in_state or r.next_state or spec.initial
    if stopped in spec.states:
        return spec.states[stopped].resume_target(stopped)
    return stopped


def _continue(ctx: RunContext, spec: WorkflowSpec, r: Replay) -> tuple[str | None, str | None]:
    start = start_state(spec, r)
    ctx.resumed_from = r.stopped_in
    if spec.all_states[start].terminal:
        return start, None
    if spec.guard is not None and _past_preflight(spec, start) and not _preflight_again(ctx, spec):
        return None, None
    return drive(ctx, continue_child, start=start)


def _guard_state(spec: WorkflowSpec) -> str | None:
    """The state running the workflow's guard check (the step whose signature `guards`)."""
    from .registry import signatures

    sigs = signatures()
    return next((n for n, s in spec.states.items() if s.do is not None and s.do in sigs and sigs[s.do].guards), None)


def _past_preflight(spec: WorkflowSpec, start: str) -> bool:
    guard = _guard_state(spec)
    return guard is not None and spec.states[start].do != spec.states[guard].do


def _preflight_again(ctx: RunContext, spec: WorkflowSpec) -> bool:
    """Run the workflow's guard check (its preflight) once more; False (diagnosis printed) when it refuses."""
    from .registry import get_step

    name = _guard_state(spec)
    if name is None:
        return True
    do = spec.states[name].do or ""
    step = get_step(do)
    if step is None:
        return True
    try:
        run_step(ctx, name, StateSpec(do=do), step)
    except Refusal as refusal:
        ctx.out.lines(refusal.diagnosis, error=True)
        ctx.event("resume_refused", reason=refusal.reason)
        ctx.out.say(f"Run {ctx.run_id} was not resumed and stays interrupted; nothing was changed.", err=True)
        return False
    except StepError as exc:
        ctx.out.failure(exc, state=name, step="preflight")
        ctx.out.say(f"Run {ctx.run_id} was not resumed and stays interrupted; nothing was changed.", err=True)
        return False
    finally:
        ctx.step_signature = None
    return True


def abandon_advice(i: InterruptedRun, paths: Paths) -> list[str]:
    """What the step of the interrupted state says a person must do by hand."""
    from .registry import get_step

    r = i.child or i.replay
    header = []
    if i.damaged:
        header = [f"  Its journal is damaged ({i.damage_text}): what follows uses only the lines that could be read, "
                  "so check each command against what you see before running it."]
    try:
        spec = _load_spec(r, paths)
    except DefinitionError:
        return header
    state = r.stopped_in or spec.initial
    facts: dict[str, Any] = {}
    for name, raw in r.facts.items():
        try:
            facts[name] = load_fact(name, raw)
        except ValueError:
            continue
    sspec = spec.states.get(state)
    step = get_step(sspec.do) if sspec is not None and sspec.do else None
    advice = getattr(step, "advice", None) if step is not None else None
    return header + (advice(facts, state) if advice is not None else [])
