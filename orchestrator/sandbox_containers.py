"""Finding a sandbox's container through the Docker API (never the docker CLI).

The OpenShell Docker driver names containers `openshell-<name>-<uuid>` and labels them
`openshell.ai/sandbox-name=<name>`; the label is what we trust.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors

from .engine.errors import StepError

SANDBOX_LABEL = "openshell.ai/sandbox-name"

_client: docker.DockerClient | None = None


def docker_client() -> docker.DockerClient:
    """One client per process, honouring DOCKER_HOST; a clear error when no engine answers."""
    global _client
    if _client is None:
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


def find_sandbox_container(name: str, *, running: bool = True) -> Any:
    """The sandbox's container; a StepError naming the sandbox if there is none or several."""
    client = docker_client()
    found = client.containers.list(all=not running, filters={"label": f"{SANDBOX_LABEL}={name}"})
    found = [c for c in found if c.labels.get(SANDBOX_LABEL) == name]
    if not found:
        state = "running " if running else ""
        raise StepError(f"no {state}container labelled {SANDBOX_LABEL}={name}", kind="docker")
    if len(found) > 1:
        names = ", ".join(c.name for c in found)
        raise StepError(f"several containers are labelled {SANDBOX_LABEL}={name}: {names}", kind="docker")
    return found[0]
