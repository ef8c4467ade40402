"""Finding a sandbox's container through the Docker API (never the docker CLI).

The OpenShell Docker driver names containers `openshell-<name>-<uuid>` and labels them
`openshell.ai/sandbox-id=<uuid>` and `openshell.ai/sandbox-name=<name>`. A name is unique
only per gateway (another gateway on the same engine may have its own `alpha`), so the
container is found by the sandbox id the gateway reports (`openshell sandbox get NAME`), and
by name only when the id cannot be had and the name is unambiguous.
"""

from __future__ import annotations

import re
from typing import Any

from .engine.errors import StepError

SANDBOX_LABEL = "openshell.ai/sandbox-name"
SANDBOX_ID_LABEL = "openshell.ai/sandbox-id"
_ID_LINE = re.compile(r"^\s*Id:\s*(\S+)\s*$", re.MULTILINE)

_client: Any = None  # a docker.DockerClient; docker is imported on first use (start-up time)


def docker_client() -> Any:
    """One client per process, honouring DOCKER_HOST; a clear error when no engine answers."""
    global _client
    if _client is None:
        import docker
        import docker.errors

        try:
            client = docker.from_env(timeout=120)
            client.ping()
        except docker.errors.DockerException as exc:
            raise StepError(f"  Cannot reach the Docker engine (DOCKER_HOST={_docker_host()}): {exc}", kind="docker") from None
        _client = client
    return _client


def _docker_host() -> str:
    import os

    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def sandbox_id(name: str) -> str | None:
    """The id the gateway reports for NAME (`openshell sandbox get NAME`), or None."""
    from .openshell.cli import capture_openshell, strip_ansi

    try:
        result = capture_openshell(["sandbox", "get", name], ignore_error=True, timeout=15)
    except StepError:
        return None
    match = _ID_LINE.search(strip_ansi(result.stdout)) if result.status == 0 else None
    return match.group(1) if match else None


def find_sandbox_container(
    name: str, *, running: bool = True, sandbox_id_: str | None = None, ask_gateway: bool = True
) -> Any:
    """The sandbox's container; a StepError naming the sandbox if there is none or several.

    `ask_gateway=False` never runs `openshell sandbox get` (which records the sandbox as the
    CLI's last-used one): for read-only runs such as `upgrade-sandboxes --check`.
    """
    client = docker_client()
    sid = sandbox_id_ or (sandbox_id(name) if ask_gateway else None)
    if sid is not None:
        found = client.containers.list(all=not running, filters={"label": f"{SANDBOX_ID_LABEL}={sid}"})
        found = [c for c in found if c.labels.get(SANDBOX_ID_LABEL) == sid and c.labels.get(SANDBOX_LABEL, name) == name]
    else:
        found = client.containers.list(all=not running, filters={"label": f"{SANDBOX_LABEL}={name}"})
        found = [c for c in found if c.labels.get(SANDBOX_LABEL) == name]
    if not found:
        state = "running " if running else ""
        raise StepError(f"no {state}container labelled {SANDBOX_LABEL}={name}", kind="docker")
    if len(found) > 1:
        names = ", ".join(c.name for c in found)
        raise StepError(f"several containers are labelled {SANDBOX_LABEL}={name}: {names}", kind="docker")
    return found[0]
