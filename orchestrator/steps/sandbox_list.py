"""`sandbox_list`: which sandboxes OpenShell reports, with gateway recovery
(docs/reference/gateway-recovery.md).

Writes the `sandbox_list` fact (steps/facts.py: names listed in any phase, the Ready/Running
ones, phases, ids, the format read and whether the gateway was recovered).
Refuses (fail-closed) when the result shows a schema mismatch: a protobuf decode error, every
sandbox in phase `Unspecified`, or a gateway that died on a newer-database migration error.
A transient failure (gRPC Unavailable and the like, docs/reference/grpc-errors.md) is retried
once (tenacity); any other failure is a StepError carrying the list's exit status, with the gRPC cause in
the output and in the run log (`sandbox_list_retry`, `sandbox_list_failed` events).

`with: {recover: false}` lists without recovering the gateway (no select, no start): for
read-only workflows such as `upgrade-sandboxes --check` (NemoClaw #7279).

Every `openshell` call here has the probe bound (adapters/deadlines.py): a list that hangs (a hung
CLI, a stopped gateway) is killed and the run ends with the standard "could not check" sentence
(exit 1), never a wait without end and never a recovery (`sandbox_list_hung` event).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
from tenacity import Retrying, retry_if_result, stop_after_attempt

from ..kernel.errors import Refusal, StepError
from ..engine.registry import implements
from ..adapters.openshell import (
    GATEWAY_MIGRATION,
    OpenShellNotFound,
    OpenShellTimeout,
    StateRpcIssue,
    capture_openshell,
    capture_sandbox_list_with_recovery,
    format_diagnosis,
    installed_openshell_version,
    known_drift,
    list_args,
    list_failure_lines,
    observe,
    parse_listing,
    result_issue,
)
from ..adapters.openshell.rpc_errors import grpc_cause, is_transient_failure, last_line
from ._openshell_common import guard_wording
from .facts import CLI_VERSION, SANDBOX_LIST, SandboxList

if TYPE_CHECKING:
    from ..engine.context import RunContext


def _drift(ctx: "RunContext"):
    """Re-observe: the gateway may have changed (or been started) since the preflight."""
    try:
        return known_drift(observe(state_dir=ctx.paths.gateway_state_dir))
    except StepError:
        return None


def _recover(ctx: "RunContext") -> bool:
    """No recovery with `with: {recover: false}` or in a read-only run (the workflow's
    `read_only_when` option, e.g. `--check`, which must not select or start a gateway)."""
    if ctx.read_only:
        return False
    return bool(ctx.param("recover"))


@implements("sandbox_list")
def sandbox_list(ctx: "RunContext") -> None:
    """List OpenShell sandboxes (recovering the gateway once if unreachable); refuse on schema mismatch."""
    state_dir = ctx.paths.gateway_state_dir
    try:
        cli_version = ctx.get(CLI_VERSION, None) or installed_openshell_version()
        attempt = capture_sandbox_list_with_recovery(
            list_args(cli_version),
            state_dir=state_dir,
            say=ctx.out.line,
            warn=ctx.out.error,
            recover=_recover(ctx),
        )
    except OpenShellNotFound as exc:  # upstream's sentence, shown as-is (StepError.verbatim)
        raise exc from None
    except OpenShellTimeout as exc:
        ctx.event("sandbox_list_hung", command=exc.command, seconds=exc.seconds)
        raise
    wording = guard_wording(ctx)
    start = attempt.start
    if start is not None and start.cause:
        issue = StateRpcIssue(GATEWAY_MIGRATION, _drift(ctx), output=start.error, cause=start.cause)
        raise Refusal(format_diagnosis(issue, wording), reason=issue.kind, details={"log": str(start.log_path)})
    listed = [(attempt.result, parse_listing(attempt.result.stdout, attempt.result.output))]

    def again(state) -> None:  # noqa: ANN001 - tenacity's RetryCallState
        result = state.outcome.result()[0]
        cause = grpc_cause(result.output) or last_line(result.output) or f"exit {result.status}"
        ctx.out.say(f"`openshell sandbox list` failed ({cause}); retrying once.")
        ctx.event("sandbox_list_retry", status=result.status, cause=cause)

    def transient(pair) -> bool:  # noqa: ANN001
        result, listing = pair
        return result_issue(result, phases=listing.phases) is None and is_transient_failure(result)

    def attempt_once():  # noqa: ANN202 - the first answer is the one already had
        if listed:
            return listed.pop()
        try:
            result = capture_openshell(list_args(cli_version))
        except OpenShellTimeout as exc:
            ctx.event("sandbox_list_hung", command=exc.command, seconds=exc.seconds)
            raise
        return result, parse_listing(result.stdout, result.output)

    retrying = Retrying(stop=stop_after_attempt(2), retry=retry_if_result(transient), before_sleep=again,
                        retry_error_callback=lambda state: state.outcome.result(), reraise=True)  # type: ignore[union-attr]  # set by then
    result, listing = retrying(attempt_once)
    attempt = attrs.evolve(attempt, result=result)
    kind = result_issue(result, phases=listing.phases)
    if kind is not None:
        issue = StateRpcIssue(kind, _drift(ctx), output=result.output)
        raise Refusal(format_diagnosis(issue, wording), reason=kind, details={"status": result.status})
    if result.status != 0:
        cause = grpc_cause(result.output)
        lines = list_failure_lines(attempt)
        if cause:
            lines.append(f"OpenShell said: {cause}")
        ctx.event("sandbox_list_failed", status=result.status, cause=cause, output=last_line(result.output))
        raise StepError(  # what a person reads is upstream's block; the sentence is the run's account
            "Failed to query running sandboxes from OpenShell." + (f" ({cause})" if cause else ""),
            kind="openshell", exit_code=result.status or 1, details=lines,
        )
    data = listing.as_data()
    ctx.set(SANDBOX_LIST, SandboxList(live=data["live"], ready=data["ready"], phases=data["phases"], ids=data["ids"],
                                        format=data["format"], recovered=attempt.attempted and attempt.succeeded,
                                        workspaces=data.get("workspaces", {})))
