"""Adapters for the OpenShell CLI and gateway: locate and run `openshell`, probe the gateway
(cluster container, host process, served version), decide schema drift, format the standard
diagnosis, parse sandbox listings and recover the named gateway.

Nothing here knows about the stand-in in `nemoclaw_sim`; it talks to whatever `openshell`
and `openshell-gateway` are installed.
"""

# What the steps and the CLI use; everything else is imported from its own module.
from .cli import OpenShellNotFound, OpenShellTimeout, capture_openshell, installed_openshell_version
from .diagnosis import backup_all_wording, format_diagnosis
from .drift import GATEWAY_MIGRATION, Observation, StateRpcIssue, decide, known_drift, observe, result_issue
from .health import DEFAULT_GATEWAY
from .recovery import capture_sandbox_list_with_recovery, list_failure_lines
from .sandboxes import list_args, parse_listing

__all__ = [
    "DEFAULT_GATEWAY",
    "GATEWAY_MIGRATION",
    "Observation",
    "OpenShellNotFound",
    "OpenShellTimeout",
    "StateRpcIssue",
    "backup_all_wording",
    "capture_openshell",
    "capture_sandbox_list_with_recovery",
    "decide",
    "format_diagnosis",
    "installed_openshell_version",
    "known_drift",
    "list_args",
    "list_failure_lines",
    "observe",
    "parse_listing",
    "result_issue",
]
