"""The state loop of a run, shared by a new run (engine/run.py) and a resumed one
(engine/resume.py): the context a run works in, the loop from a state to a terminal one, one
step with its retry, and the end of a run (staging discarded, `run_finished` journaled).

The loop is simple on purpose: ask the machine where we are, journal that the state starts,
run its step (with its declared retry), turn the result into an outcome, journal the outcome
and the facts written, fire the trigger of that name. A `Refusal` becomes the `refuse`
outcome, any other exception `error`. A foreach state runs its children with this same loop;
one interrupted in an earlier process is resumed with the `resume_child` the caller passes in,
so this module imports neither run.py nor resume.py.
"""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from ..kernel.errors import Refusal, StepError
from ..kernel.paths import Paths
from ..workflow.spec import StateSpec, WorkflowSpec
from .context import RunContext
from .journal import Journal
from .machine import build_machine
from .output import Reporter
from .registry import Outcome, get_step
from .signals import Interrupted

__all__ = ["KILL_ENV", "Interrupted", "RunResult", "discard", "drive", "finish", "new_context", "run_step"]

KILL_ENV = "NEMOCLAW_TEST_KILL_AT"
"""Test hook: `<workflow>:<state>:<enter|leave>[:<n>[:<signal>]]` sends this process SIGKILL
(or the named signal, e.g. `SIGINT`, `SIGTERM`) right after the journal records the n-th
(default first) entry into / exit from that state. Set only by tests."""


@attrs.frozen
class RunResult:
    run_id: str
    workflow: str
    terminal: str
    exit_code: int
    reason: str | None = None
    context: RunContext | None = attrs.field(default=None, repr=False, eq=False)


ResumeChild = Callable[[RunContext, WorkflowSpec, str], "tuple[str, int, str | None, str | None]"]
"""Resumes an interrupted foreach child: (terminal, exit code, reason, message)."""


def error_kind(exc: BaseException) -> str:
    """The category a state's `retry.errors` list is matched against."""
    if isinstance(exc, StepError):
        return exc.kind
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "TimeoutExpired":
        return "timeout"
    if type(exc).__module__.startswith("docker."):
        return "docker"
    if isinstance(exc, OSError):
        return "os"
    return "error"


def new_context(spec: WorkflowSpec, options: Mapping[str, Any], *, run_id: str, paths: Paths, out: Reporter,
                journal: Journal, debug: bool, read_only_by: str | None = None) -> RunContext:
    """A run's context. `read_only_by` is the option that made the parent of a foreach child
    read-only: the child is read-only too, whatever its own options."""
    if read_only_by is None and spec.read_only_when and options.get(spec.read_only_when):
        read_only_by = spec.read_only_when
    return RunContext(run_id=run_id, workflow=spec, options=dict(options), paths=paths, out=out, journal=journal,
                      debug=debug, read_only=read_only_by is not None, read_only_by=read_only_by)


def finish(ctx: RunContext, terminal: str, code: int, reason: str | None, started: float) -> RunResult:
    ctx.event("run_finished", terminal=terminal, exit_code=code, reason=reason, duration_s=round(time.monotonic() - started, 3))
    return RunResult(ctx.run_id, ctx.workflow.name, terminal, code, reason, ctx)


def discard(ctx: RunContext) -> None:
    if ctx.has_staging:
        ctx.staging.discard()


_kill_counts: dict[str, int] = {}


def _kill_point(ctx: RunContext, state: str, when: str) -> None:
    """The KILL_ENV test hook; a no-op unless it names this point."""
    want = os.environ.get(KILL_ENV)
    if not want:
        return
    parts = want.split(":")
    if parts[:3] != [ctx.workflow.name, state, when]:
        return
    key = ":".join(parts[:3])
    _kill_counts[key] = _kill_counts.get(key, 0) + 1
    if _kill_counts[key] == (int(parts[3]) if len(parts) > 3 and parts[3] else 1):
        os.kill(os.getpid(), getattr(signal, parts[4]) if len(parts) > 4 else signal.SIGKILL)
        time.sleep(0.5)  # a polite signal's handler runs here, in this state's place


def drive(ctx: RunContext, resume_child: ResumeChild, start: str | None = None) -> tuple[str, str | None]:
    """Run states from `start` (default the initial state) until a terminal one; a foreach
    state resumes an interrupted child with `resume_child` (engine/resume.py)."""
    spec = ctx.workflow
    _, model = build_machine(spec, initial=start)
    states = spec.all_states
    reason: str | None = None
    while not states[model.state].terminal:
        name = model.state
        sspec = spec.states[name]
        step_def = get_step(sspec.do) if sspec.do else None
        step_name = sspec.do if sspec.foreach is None else f"foreach:{sspec.foreach.workflow}"
        mutates = sspec.foreach is not None or bool(step_def and step_def.mutates)
        if ctx.read_only and step_def is not None and step_def.mutates:
            # Read-only means nothing changes: a step declared `mutates` (or `commits`) never runs.
            ctx.out.error(f"  Refusing to run '{step_def.name}' (state '{name}'): this run is read-only "
                          f"(--{(ctx.read_only_by or '').replace('_', '-')}).")
            ctx.event("refused", state=name, reason="read-only", step=step_def.name)
            return "failed", "read-only"
        if mutates and ctx.journal.broken and not ctx.read_only:
            ctx.out.say(f"Stopping before state '{name}': it changes sandboxes or backups, and the run journal "
                        f"cannot be written ({ctx.journal.broken}), so a crash there could not be finished later.", err=True)
            reason = "journal unwritable"
            model.trigger("error")
            continue
        if mutates and not ctx.read_only:
            ctx.journal.changed = True  # an interrupt from here on leaves the run to be finished
        ctx.event("state_entered", state=name, step=step_name)
        _kill_point(ctx, name, "enter")
        t0 = time.monotonic()
        ctx.written = {}
        try:
            outcome = _run_state(ctx, name, sspec, resume_child)
        except Refusal as refusal:
            outcome = "refuse"
            reason = refusal.reason
            ctx.event("refused", state=name, reason=refusal.reason, details=refusal.details)
            if sspec.refuse is None:
                outcome = "error"
            ctx.out.lines(refusal.diagnosis, error=True)
        except (KeyboardInterrupt, Interrupted):
            ctx.event("state_interrupted", state=name, duration_s=round(time.monotonic() - t0, 3))
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure is routed, none escapes
            if isinstance(exc, SystemExit):
                raise
            outcome = "error"
            reason = f"{type(exc).__name__}: {exc}"  # a StepError's sentence carries no indent
            ctx.last_error, ctx.last_error_state = exc, name
            _report_failure(ctx, name, sspec, exc)
            if isinstance(exc, StepError) and exc.exit_code is not None:
                ctx.exit_code = exc.exit_code
            routed = getattr(exc, "outcome", None)
            if routed and routed in sspec.transitions():
                outcome = routed
        finally:
            ctx.step_signature = None
        routes = sspec.transitions()
        if outcome not in routes:
            _report_failure(ctx, name, sspec, StepError(
                f"step '{sspec.do}' ended with '{outcome}', which state '{name}' does not route "
                f"(it routes: {', '.join(sorted(routes))})"))
            outcome = "error"
        facts = {}
        if outcome != "error":
            from .facts import dump

            facts = {k: dump(k, v) for k, v in ctx.written.items()}
        ctx.event("state_left", state=name, outcome=outcome, to=routes[outcome], facts=facts,
                  duration_s=round(time.monotonic() - t0, 3))
        _kill_point(ctx, name, "leave")
        model.trigger(outcome)
    return model.state, reason


def _report_failure(ctx: RunContext, state: str, sspec: StateSpec, exc: BaseException) -> None:
    extra = {k: v for k, v in (("sandbox", getattr(exc, "sandbox", None)), ("hint", getattr(exc, "hint", None))) if v}
    ctx.event("step_failed", state=state, step=sspec.do, kind=error_kind(exc), error=str(exc).strip(), type=type(exc).__name__,
              **extra)
    ctx.out.failure(exc, state=state, step=sspec.do, debug=ctx.debug)
    if ctx.debug:
        ctx.out.error("".join(traceback.format_exception(exc)).rstrip())


def _run_state(ctx: RunContext, name: str, sspec: StateSpec, resume_child: ResumeChild) -> str:
    if sspec.foreach is not None:
        from .foreach import ChildRunner, run_foreach

        def drive_child(child: RunContext) -> tuple[str, str | None]:
            return drive(child, resume_child)

        return run_foreach(ctx, name, sspec.foreach, ChildRunner(new_context, drive_child, resume_child))
    step = get_step(sspec.do or "")
    if step is None:  # validated at load time; kept for workflows built in code
        raise StepError(f"unknown step '{sspec.do}'")
    return run_step(ctx, name, sspec, step)


def run_step(ctx: RunContext, name: str, sspec: StateSpec, step: Any) -> str:
    """Call a step with the state's parameters and retry; check it wrote what it declares."""
    ctx.params = dict(sspec.with_)
    ctx.step_signature = step.signature

    def call() -> object:
        return step.func(ctx)

    if sspec.retry is None:
        result = call()
    else:
        r = sspec.retry
        kinds = set(r.errors)

        def before_sleep(rs: RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            wait = rs.next_action.sleep if rs.next_action else 0
            ctx.event("retry", state=name, attempt=rs.attempt_number, of=r.attempts, error=str(exc), kind=error_kind(exc) if exc else None, wait_s=wait)
            ctx.out.say(f"Retrying '{name}' (attempt {rs.attempt_number + 1} of {r.attempts}) in {wait:.1f} s: {exc}")

        retrying = Retrying(
            stop=stop_after_attempt(r.attempts),
            wait=wait_exponential(multiplier=r.backoff.initial, exp_base=r.backoff.multiplier, max=r.backoff.max),
            retry=retry_if_exception(lambda e: error_kind(e) in kinds),
            before_sleep=before_sleep,
            reraise=True,
        )
        result = retrying(call)
    outcome = _normalize(result)
    missing = sorted(set(step.writes) - set(ctx.written))
    if missing:
        raise StepError(f"internal error: step '{step.name}' ended with '{outcome}' without writing {', '.join(missing)}")
    ctx.event("step_outcome", state=name, step=step.name, outcome=outcome)
    return outcome


def _normalize(result: object) -> str:
    if result is None:
        return "next"
    if isinstance(result, str):
        return result
    if isinstance(result, Outcome):
        return result.name
    raise StepError(f"a step returned {type(result).__name__}; expected None or an outcome name")
