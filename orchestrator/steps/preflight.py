"""`preflight`: the gateway schema preflight a guarded workflow starts with
(docs/reference/gateway-preflight.md).

Refuses, with the standard diagnosis, when the installed `openshell` CLI and the running
gateway may speak different schemas. It only observes: it never runs `openshell sandbox
list`, never starts, selects or stops a gateway.

An `openshell` probe that did not answer within its deadline (adapters/deadlines.py) means the
CLI or its gateway hangs: the run stops here with the standard "could not check" sentence (exit
1; a drift it could see is still refused first), as `nemoclaw gateway check` does, rather than go on to a `sandbox list` that would hang too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kernel.errors import Refusal, StepError
from ..engine.registry import implements
from ..adapters import deadlines
from ..adapters.openshell import OpenShellNotFound, decide, format_diagnosis, observe
from ..adapters.openshell.cli import hung_sentence
from ..adapters.openshell.version import cross_line
from ._openshell_common import guard_wording
from .facts import CLI_VERSION

if TYPE_CHECKING:
    from ..engine.context import RunContext


@implements("preflight")
def preflight(ctx: "RunContext") -> None:
    """Refuse when the OpenShell CLI and gateway versions drift (cluster image, host binary, served version)."""
    try:
        obs = observe(state_dir=ctx.paths.gateway_state_dir)
    except OpenShellNotFound as exc:  # upstream's sentence, shown as-is (StepError.verbatim)
        raise exc from None
    issue = decide(obs)
    if issue is not None:
        raise Refusal(
            format_diagnosis(issue, guard_wording(ctx)),
            reason=issue.kind,
            details={
                "expected": getattr(issue.drift, "expected_version", None),
                "current": getattr(issue.drift, "current_version", None),
                "cross_line": cross_line(getattr(issue.drift, "expected_version", None),
                                         getattr(issue.drift, "current_version", None)),
            },
        )
    if obs.hung:
        seconds = deadlines.probe()
        ctx.event("preflight_hung", commands=list(obs.hung), seconds=seconds)
        raise StepError(hung_sentence(obs.hung[0], seconds), kind="openshell_timeout", exit_code=1)
    ctx.set(CLI_VERSION, obs.cli_version)
