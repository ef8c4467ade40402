"""One workflow run from the command line: the journal, the writer lock and the sweep of dead
runs' staging, the resume of interrupted runs, the state loop (engine/drive.py), the exit code.
The terminal state decides the exit code; staging is always discarded at the end, since
committing moved everything worth keeping out of it.

Before a mutating run does its own work it finishes what interrupted runs left undone
(engine/resume.py); a read-only run reports them and ends non-zero. A run whose journal is
damaged is never resumed: a mutating run refuses (exit 1) until it is abandoned.

SIGINT and SIGTERM (engine/signals.py) stop the run where it is, its steps' cleanup runs (a
frozen sandbox is unfrozen, staging discarded), and it exits 130 or 143. Once the run has
entered a state that changes the world its journal is left without an end (a
`run_interrupted` line, which is not one), so the next mutating command finishes it exactly
as after a SIGKILL; before that state it ends `interrupted`, with nothing to finish. A read-only
run (`--check`) writes no journal at all.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from typing import Any

from ..kernel.owner import Owner
from ..kernel.paths import Paths
from ..workflow.spec import WorkflowSpec
from .context import RunContext
from .drive import KILL_ENV, Interrupted, RunResult, discard, drive, finish, new_context
from .journal import JOURNAL_FORMAT, Journal, new_run_id
from .output import Reporter
from .resume import continue_child, damaged_line, describe_run, find_interrupted, report_interrupted, resume_all
from .signals import handling

__all__ = ["EXIT_INTERRUPTED", "EXIT_LOCKED", "KILL_ENV", "Interrupted", "RunResult", "run_workflow"]

EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130


def run_workflow(
    spec: WorkflowSpec,
    options: Mapping[str, Any],
    *,
    paths: Paths | None = None,
    out: Reporter | None = None,
    debug: bool = False,
    resume_interrupted: bool = True,
) -> RunResult:
    """Run a workflow from its initial state to a terminal one. Never raises for a step's
    failure; an interrupt (Ctrl-C, SIGTERM) ends it after cleanup, as a RunResult with exit
    code 130 (or 128+signal), and leaves it to be finished by the next run once it had begun
    to change the world."""
    paths = paths or Paths.from_env()
    out = out or Reporter()
    run_id = new_run_id()
    read_only = bool(spec.read_only_when and options.get(spec.read_only_when))
    if spec.lock and not read_only:
        from ..store.lock import LockUnusable, check_lock_path

        try:
            check_lock_path(paths.lock_file)  # before any journal: a run that cannot lock leaves none
        except LockUnusable as exc:
            out.error(f"  {exc}")
            return RunResult(run_id, spec.name, "failed", 1, "lock path unusable")
    # A read-only run writes nothing, not even its journal.
    journal = Journal(None if read_only else paths.runs_dir / f"{run_id}.jsonl", run_id, warn=out.error)
    ctx = new_context(spec, options, run_id=run_id, paths=paths, out=out, journal=journal, debug=debug)
    started = time.monotonic()
    with handling():
        try:
            return _run(ctx, spec, options, paths, out, debug, resume_interrupted, started)
        finally:
            journal.close()


def _run(ctx: RunContext, spec: WorkflowSpec, options: Mapping[str, Any], paths: Paths, out: Reporter,
         debug: bool, resume_interrupted: bool, started: float) -> RunResult:
    run_id, journal = ctx.run_id, ctx.journal
    lock = None
    try:
        journal.write(
            "run_started",
            workflow=spec.name,
            source=str(spec.source) if spec.source else None,
            options=dict(options),
            read_only=ctx.read_only,
            format=JOURNAL_FORMAT,
            pid=os.getpid(),
            host=socket.gethostname(),
            argv=sys.argv,
            owner=Owner.current(run_id).to_json(),
        )
        resumed_ok = True
        if spec.lock and not ctx.read_only:
            from ..kernel.errors import StoreError
            from ..store.errors import LockHeld
            from ..store.lock import WriterLock
            from ..store.staging import describe_sweep, sweep

            try:
                lock = WriterLock(paths.lock_file, run_id).acquire()
            except LockHeld as held:
                out.error(f"  {held}")
                return finish(ctx, "locked", EXIT_LOCKED, "locked", started)
            except StoreError as exc:
                out.error(f"  {exc}")
                return finish(ctx, "failed", 1, "lock unusable", started)
            if lock.broken is not None:
                out.line(lock.broken.message)
                ctx.event("lock_broken", message=lock.broken.message)
            swept = describe_sweep(sweep(paths.staging_root, keep=[run_id]))
            if swept:
                out.line(swept)
                ctx.event("staging_swept", message=swept)
            if resume_interrupted:
                damaged = [i for i in find_interrupted(paths) if i.damaged]
                if damaged:
                    for i in damaged:
                        out.error(damaged_line(i))
                    out.error(f"  Not running {spec.name}: a damaged run must be given up (and its sandbox put back) "
                              "by hand first, so that nothing goes on past what it may have left half done.")
                    ctx.event("refused", reason="damaged journal", runs=[i.run_id for i in damaged])
                    return finish(ctx, "refused", 1, "damaged journal", started)
                rerun_of = spec.name if spec.interrupted == "rerun" else None
                resumed_ok = resume_all(paths, out, debug=debug, by=run_id, rerun_of=rerun_of)
        elif ctx.read_only:
            ctx.interrupted = report_interrupted(paths, out)
        terminal, reason = drive(ctx, continue_child)
        code = ctx.exit_code if ctx.exit_code is not None else spec.exit_code(terminal)
        if code == 0 and (not resumed_ok or ctx.interrupted):
            code = 1
        discard(ctx)
        return finish(ctx, terminal, code, reason, started)
    except (KeyboardInterrupt, Interrupted) as exc:
        discard(ctx)
        signum = signal.SIGINT if isinstance(exc, KeyboardInterrupt) else exc.signum
        code = EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else 128 + exc.signum
        name = signal.Signals(signum).name
        out.error("")
        if journal.changed and journal.path is not None and not journal.broken:
            ctx.event("run_interrupted", signal=name, exit_code=code)  # not an end: the run is to be finished
            where = describe_run(journal.path)
            what = f" ({where.describe()})" if where is not None else ""
            out.error(f"  Interrupted by {name}: run {run_id}{what} is left interrupted, not finished; its staged "
                      "data was discarded and nothing partial was committed.")
            out.error(f"  The next backup or upgrade command finishes it first; or run `nemoclaw runs resume {run_id}` "
                      f"now, or `nemoclaw runs abandon {run_id}` to give it up.")
            return RunResult(run_id, spec.name, "interrupted", code, "interrupted", ctx)
        out.error(f"  Interrupted: staged data of run {run_id} was discarded; nothing partial was committed.")
        return finish(ctx, "interrupted", code, "interrupted", started)
    finally:
        if lock is not None:
            lock.release()
