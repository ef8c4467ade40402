"""The standard refusal text
(docs/reference/gateway-preflight.md, "The refusal text"), identical on every gateway driver.

Users and scripts grep these lines, so they are reproduced character for character; the
engine prints them to stderr one per line, unchanged. The served-version and migration
variants are ours and keep the same shape.
"""

from __future__ import annotations

import os
import re

import attrs

from .cli import strip_ansi
from .version import cross_line, cross_line_message
from .drift import (
    GATEWAY_MIGRATION,
    REACTIVE_KINDS,
    HostProcessDrift,
    ImageDrift,
    ServedVersionDrift,
    StateRpcIssue,
)

DEFAULT_ACTION = "querying OpenShell sandbox state"


def cli_name() -> str:
    invoked = os.environ.get("NEMOCLAW_INVOKED_AS", "")
    return invoked if invoked in ("nemoclaw", "nemohermes") else "nemoclaw"


def cli_display_name() -> str:
    return "NemoHermes" if os.environ.get("NEMOCLAW_AGENT") == "hermes" else "NemoClaw"


@attrs.frozen
class Wording:
    """What the refused command was doing, and how to rerun it."""

    action: str = DEFAULT_ACTION
    command: str | None = None


def backup_all_wording() -> Wording:
    return Wording("backing up registered sandboxes", f"{cli_name()} backup-all")


def upgrade_sandboxes_wording() -> Wording:
    return Wording("checking sandbox upgrade state", f"{cli_name()} upgrade-sandboxes")


def compact_output(output: str) -> str:
    """stripAnsi, whitespace runs → one space, trimmed, first 260 characters."""
    return re.sub(r"\s+", " ", strip_ansi(output)).strip()[:260]


def _drift_lines(drift: object) -> list[str]:
    if isinstance(drift, HostProcessDrift):
        shown = drift.gateway_bin or "host-process gateway"
        return [f"  Installed OpenShell: {drift.expected_version}", f"  Running gateway binary: {shown} ({drift.current_version})"]
    if isinstance(drift, ImageDrift):
        return [f"  Installed OpenShell: {drift.expected_version}", f"  Running gateway image: {drift.current_image} ({drift.current_version})"]
    if isinstance(drift, ServedVersionDrift):
        return [f"  Installed OpenShell: {drift.expected_version}", f"  Running gateway version: {drift.endpoint} ({drift.current_version})"]
    return []


def _cross_line_lines(drift: object) -> list[str]:
    """One extra line when installed and running OpenShell are on different release lines
    (0.0.x vs 0.1.x): no such pair can work, and no repair of the gateway alone fixes it
    (docs/reference/openshell-versions.md)."""
    expected, current = getattr(drift, "expected_version", None), getattr(drift, "current_version", None)
    if expected and current and cross_line(expected, current):
        return [cross_line_message(expected, current)]
    return []


def format_diagnosis(issue: StateRpcIssue, wording: Wording | None = None) -> list[str]:
    """The refusal block for `issue`, one string per stderr line ("" = blank line)."""
    wording = wording or Wording()
    display = cli_display_name()
    if issue.kind in REACTIVE_KINDS:
        phase = f"  OpenShell gateway/schema mismatch was detected while {wording.action}."
    else:
        phase = f"  OpenShell gateway schema preflight failed before {wording.action}."
    lines = ["", phase]
    drift = issue.drift
    if drift:
        lines += _drift_lines(drift) + _cross_line_lines(drift)
    elif issue.kind != GATEWAY_MIGRATION:
        lines.append(f"  {display} saw protobuf/schema mismatch output from OpenShell.")
    if issue.kind == GATEWAY_MIGRATION:
        lines.append(f"  Gateway start failed: {issue.cause or 'the gateway exited during startup'}.")
    if issue.kind in REACTIVE_KINDS:
        snippet = compact_output(issue.output)
        if snippet:
            lines.append(f"  OpenShell output: {snippet}")
    rerun = f" `{wording.command}`" if wording.command else " the command"
    lines += [
        "",
        "  Refusing to trust OpenShell sandbox state while the host CLI and gateway schema may be out of sync.",
        "  No sandbox data was changed.",
        "",
        "  Recovery:",
        f"    1. Run `{cli_name()} onboard --resume` to repair or recreate the {display} gateway with the installed OpenShell version.",
        f"    2. Rerun{rerun} after `openshell status` reports a healthy {display} gateway.",
        "",
    ]
    if isinstance(drift, (HostProcessDrift, ServedVersionDrift)):
        lines.append(
            "  If gateway recreation is required, preserve sandbox state first; do not delete sandbox volumes or backups"
            f" until `openshell status` reports a healthy {display} gateway on the installed OpenShell version."
        )
    elif isinstance(drift, ImageDrift):
        lines.append(
            f"  If gateway recreation is required, preserve sandbox state first; do not remove `{drift.container_name}`"
            " Docker volumes unless you have a backup and explicitly accept state loss."
        )
    else:
        lines.append(
            "  If gateway recreation is required, preserve sandbox state first; do not delete sandbox state, backups,"
            f" or gateway data until `openshell status` reports a healthy {display} gateway."
        )
    return lines
