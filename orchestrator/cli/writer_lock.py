"""The writer lock for the `backups` commands that change the local store (restore, prune, push,
pull): one way to take it, with the same sentences and exit codes as a workflow run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from .echo import fail


@contextmanager
def writer_lock(*, finish_interrupted: bool = False) -> Iterator[str]:
    """Hold the writer lock and yield this command's run id; with `finish_interrupted`, first
    sweep dead staging areas and finish what interrupted runs left undone (a restore or a pull
    must not race a half-done rebuild). Imports are lazy: `--help` loads none of this."""
    from ..engine.journal import new_run_id
    from ..kernel.paths import Paths
    from ..store.errors import LockHeld
    from ..store.lock import LockUnusable, WriterLock

    paths = Paths.from_env()
    me = new_run_id()
    try:
        lock = WriterLock(paths.lock_file, me).acquire()
    except LockHeld as exc:
        fail(f"  {exc}", exc.exit_code)
    except LockUnusable as exc:  # a person's mistake: the same sentence and exit 1 as a workflow run
        fail(f"  {exc}", 1)
    if lock.broken is not None:
        click.echo(lock.broken.message)
    try:
        if finish_interrupted:
            from ..engine.output import Reporter
            from ..engine.resume import resume_all
            from ..store.staging import describe_sweep, sweep

            swept = describe_sweep(sweep(paths.staging_root, keep=[me]))
            if swept:
                click.echo(swept)
            resume_all(paths, Reporter(), debug=False, by=me)
        yield me
    finally:
        lock.release()
