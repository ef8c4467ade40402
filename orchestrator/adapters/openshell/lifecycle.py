"""Every change to a sandbox's lifecycle, through the `openshell` CLI (docs/reference/sandbox-lifecycle.md).

Upstream moved start and stop of Docker sandboxes into OpenShell (NemoClaw #11909): a bare
`docker start` restarts the container without advancing OpenShell's phase (#11797), and on
0.1.x cannot start the supervisor companion at all; a bare `docker stop` leaves the sandbox
in phase `Error`, which 0.0.116 refuses to start (#11885). So create, delete, start and stop
are `openshell sandbox <verb>`, never a Docker call on a managed container. 0.1.x selects the
workspace explicitly (#3245): these commands pass `--workspace default` there.

`sandbox_phase` reads the phase as `openshell sandbox get` prints it: the word a test or a user
sees, and the one the rebuild checks after its `stop`.
"""

from __future__ import annotations

import re

from ...kernel.errors import StepError
from .cli import CaptureResult, capture_openshell, installed_openshell_version, strip_ansi, version_gte

WORKSPACE = "default"
WORKSPACE_FLAG_SINCE = "0.1.0"
OPERATION_TIMEOUT = 120.0
STOPPED = "Stopped"
ERROR = "Error"
NOT_RUNNING_PHASES = (STOPPED, ERROR)
"""The phases of a sandbox whose container is not running: backed up from that container,
never started for it."""
_PHASE_LINE = re.compile(r"^\s*Phase:\s*(\S+)\s*$", re.MULTILINE)


def _workspace(cli_version: str | None) -> list[str]:
    return ["--workspace", WORKSPACE] if cli_version and version_gte(cli_version, WORKSPACE_FLAG_SINCE) else []


def lifecycle_args(verb: str, name: str, *, image: str | None = None, cli_version: str | None = None) -> list[str]:
    """`sandbox create|delete|start|stop` for NAME as the installed CLI takes it."""
    ws = _workspace(cli_version)
    if verb == "create":
        assert image is not None
        return ["sandbox", "create", *ws, "--name", name, "--from", image]
    if verb in ("delete", "start", "stop"):
        return ["sandbox", verb, *ws, name]
    raise ValueError(f"not a lifecycle verb: {verb}")


def run_lifecycle(verb: str, name: str, *, image: str | None = None, timeout: float = OPERATION_TIMEOUT) -> CaptureResult:
    """Run one lifecycle command; the result, whatever its exit status (the caller decides)."""
    args = lifecycle_args(verb, name, image=image, cli_version=installed_openshell_version())
    return capture_openshell(args, timeout=timeout)


def sandbox_phase(name: str, *, timeout: float = 30.0) -> str | None:
    """The phase `openshell sandbox get NAME` prints, or None when it does not answer with one."""
    try:
        result = capture_openshell(["sandbox", "get", *_workspace(installed_openshell_version()), name],
                                   ignore_error=True, timeout=timeout)
    except StepError:
        return None
    match = _PHASE_LINE.search(strip_ansi(result.stdout)) if result.status == 0 else None
    return match.group(1) if match else None
