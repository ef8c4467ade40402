"""The standard refusal block (docs/reference/gateway-preflight.md, "The refusal text") as end-to-end tests expect it on stderr.

One copy for every end-to-end test; the formatter's own unit tests (tests/openshell/
test_diagnosis.py) keep their literal text, so a change here cannot hide a change there.
"""

from __future__ import annotations


def host_process_drift_block(action: str, command: str, gateway_bin: str, installed: str, running: str) -> list[str]:
    """The block for a host-process gateway binary at `running` under an `installed` CLI."""
    return [
        "",
        f"  OpenShell gateway schema preflight failed before {action}.",
        f"  Installed OpenShell: {installed}",
        f"  Running gateway binary: {gateway_bin} ({running})",
    ] + _refusal_tail(command)


def cross_line_block(action: str, command: str, running_line: str, installed: str, running: str) -> list[str]:
    """The block for a drift across release lines: the standard block plus one line after the
    `Running gateway …` line (`running_line`, e.g. `  Running gateway binary: /x (0.1.5)`)."""
    from orchestrator.adapters.openshell.version import cross_line_message

    return [
        "",
        f"  OpenShell gateway schema preflight failed before {action}.",
        f"  Installed OpenShell: {installed}",
        running_line,
        cross_line_message(installed, running),
    ] + _refusal_tail(command)


def _refusal_tail(command: str) -> list[str]:
    """What every drift block ends with: the refusal, the recovery steps, the warning."""
    return [
        "",
        "  Refusing to trust OpenShell sandbox state while the host CLI and gateway schema may be out of sync.",
        "  No sandbox data was changed.",
        "",
        "  Recovery:",
        "    1. Run `nemoclaw onboard --resume` to repair or recreate the NemoClaw gateway with the installed OpenShell version.",
        f"    2. Rerun `{command}` after `openshell status` reports a healthy NemoClaw gateway.",
        "",
        "  If gateway recreation is required, preserve sandbox state first; do not delete sandbox volumes or backups "
        "until `openshell status` reports a healthy NemoClaw gateway on the installed OpenShell version.",
    ]
