"""One workflow run from the command line: the journal, the writer lock and the sweep of dead
runs' staging, the resume of interrupted runs, the state loop (engine/drive.py), the exit code.
The terminal state decides the exit code; staging is always discarded at the end, since
committing moved everything worth keeping out of it.

Before a mutating run does its own work it finishes what interrupted runs left undone
(engine/resume.py); a read-only run reports them and ends non-zero.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Mapping
from typing import Any

from ..kernel.owner import Owner
from ..kernel.paths import Paths
from ..workflow.spec import WorkflowSpec
from .drive import KILL_ENV, Interrupted, RunResult, discard, drive, finish, new_context
from .journal import Journal, new_run_id
from .output import Reporter
from .resume import continue_child, report_interrupted, resume_all

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
    code 130 (or 128+signal)."""
    paths = paths or Paths.from_env()
    out = out or Reporter()
    run_id = new_run_id()
    journal = Journal(paths.runs_dir / f"{run_id}.jsonl", run_id, warn=out.error)
    ctx = new_context(spec, options, run_id=run_id, paths=paths, out=out, journal=journal, debug=debug)
    started = time.monotonic()
    journal.write(
        "run_started",
        workflow=spec.name,
        source=str(spec.source) if spec.source else None,
        options=dict(options),
        read_only=ctx.read_only,
        pid=os.getpid(),
        host=socket.gethostname(),
        argv=sys.argv,
        owner=Owner.current(run_id).to_json(),
    )
    lock = None
    try:
        resumed_ok = True
        if spec.lock and not ctx.read_only:
            from ..store.errors import LockHeld
            from ..store.lock import WriterLock
            from ..store.staging import describe_sweep, sweep

            try:
                lock = WriterLock(paths.lock_file, run_id).acquire()
            except LockHeld as held:
                out.error(f"  {held}")
                return finish(ctx, "locked", EXIT_LOCKED, "locked", started)
            if lock.broken is not None:
                out.line(lock.broken.message)
                ctx.event("lock_broken", message=lock.broken.message)
            swept = describe_sweep(sweep(paths.staging_root, keep=[run_id]))
            if swept:
                out.line(swept)
                ctx.event("staging_swept", message=swept)
            if resume_interrupted:
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
        code = EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else 128 + exc.signum
        out.error("")
        out.error(f"  Interrupted: staged data of run {run_id} was discarded; nothing partial was committed.")
        return finish(ctx, "interrupted", code, "interrupted", started)
    finally:
        if lock is not None:
            lock.release()
        journal.close()
