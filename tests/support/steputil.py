"""Running one step the way the engine does, with its output captured."""

from __future__ import annotations

import io
from types import SimpleNamespace

from orchestrator.engine.context import RunContext
from orchestrator.engine.journal import Journal
from orchestrator.engine.output import Reporter
from orchestrator.engine.registry import get_step
from orchestrator.kernel.errors import StepError
from orchestrator.kernel.paths import Paths

BACKUP_ALL = SimpleNamespace(action="backing up registered sandboxes", command="nemoclaw backup-all")
UPGRADE = SimpleNamespace(action="checking sandbox upgrade state", command="nemoclaw upgrade-sandboxes")


def make_ctx(guard=BACKUP_ALL) -> RunContext:
    out = Reporter(stdout=io.StringIO(), stderr=io.StringIO())
    return RunContext(
        run_id="test",
        workflow=SimpleNamespace(name="test", guard=guard),
        options={},
        paths=Paths.from_env(),
        out=out,
        journal=Journal(None, "test"),  # the journal is not under test here
    )


def run_step(name: str, ctx: RunContext):
    """The step, with a StepError shown on the context's stderr as the engine shows it
    (engine/output.py) and raised again."""
    step = get_step(name)
    ctx.step_signature = step.signature
    try:
        return step.func(ctx)
    except StepError as exc:
        ctx.out.failure(exc, state=name, step=name)
        raise
    finally:
        ctx.step_signature = None


def stdout(ctx: RunContext) -> str:
    return ctx.out.stdout.getvalue()


def stderr(ctx: RunContext) -> str:
    return ctx.out.stderr.getvalue()
