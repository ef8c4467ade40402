"""Finding a sandbox's container, and its data root, through the Docker API (never the docker CLI).

The OpenShell Docker driver labels a sandbox's container `openshell.ai/sandbox-id=<uuid>` and
`openshell.ai/sandbox-name=<name>`; its name is `openshell-<name>-<uuid>` up to 0.0.87 and
`openshell-<workspace>--<name>-<uuid>` from 0.0.88, which also adds the label
`openshell.ai/sandbox-workspace`. On 0.1.x each sandbox has two containers with the same
sandbox labels, the workload and a supervisor companion, told apart by the role label
`openshell.ai/isolation-role` (`sandbox` | `supervisor`; an earlier Podman driver spelled it
`openshell.io/`, read too); the agent's files live in the workload
(docs/reference/openshell-sandbox-containers.md). So containers are selected by label, never by
name, and a supervisor is never chosen.

A sandbox in phase Stopped or Error is read from its stopped workload container (Docker serves
a stopped container's archive): `stopped_workload`. Nothing here starts, stops or removes a
container; lifecycle changes go through OpenShell (adapters/openshell/lifecycle.py).

A name is unique only per gateway (another gateway on the same engine may have its own
`alpha`), so the container is found by the sandbox id the gateway reports, and by name (plus
workspace) only when the id cannot be had and the name is unambiguous.

From 0.0.99 the sandbox's data root is the image's OCI WorkingDir unless that is empty, `/` or
`/sandbox`; agent definitions name paths under `/sandbox`, which `agent_at_root` moves there.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

import attrs

from ..kernel.errors import StepError
from ..kernel.paths import COMPAT_ROOT, rebase

SANDBOX_LABEL = "openshell.ai/sandbox-name"
SANDBOX_ID_LABEL = "openshell.ai/sandbox-id"
WORKSPACE_LABEL = "openshell.ai/sandbox-workspace"
ROLE_LABELS = ("openshell.ai/isolation-role", "openshell.io/isolation-role")
NOT_RUNNING_STATES = ("exited", "created")
"""Docker states of a container that is not running (and not paused): readable, never started by us."""
SUPERVISOR_ROLE = "supervisor"
_ID_LINE = re.compile(r"^\s*Id:\s*(\S+)\s*$", re.MULTILINE)

_client: Any = None  # a docker.DockerClient; docker is imported on first use (start-up time)


def docker_client() -> Any:
    """One client per process, honouring DOCKER_HOST; a clear error when no engine answers.

    Deadlines (adapters/deadlines.py): the first ping has the probe bound, every request after
    it `DOCKER_REQUEST` (docker-py's per-request socket timeout)."""
    global _client
    if _client is None:
        import docker
        import docker.errors

        from . import deadlines

        try:
            client = docker.from_env(timeout=deadlines.probe())  # type: ignore[arg-type]  # docker-py hands it to requests, which takes seconds as a float; the stubs say int
            client.ping()
        except docker.errors.DockerException as exc:
            raise StepError(f"Cannot reach the Docker engine (DOCKER_HOST={_docker_host()}): {exc}", kind="docker") from None
        client.api.timeout = deadlines.DOCKER_REQUEST  # type: ignore[assignment]  # a float, as above
        _client = client
    return _client


def _docker_host() -> str:
    import os

    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def sandbox_id(name: str) -> str | None:
    """The id the gateway reports for NAME (`openshell sandbox get NAME`), or None."""
    from . import deadlines
    from .openshell.cli import capture_openshell, strip_ansi

    try:
        result = capture_openshell(["sandbox", "get", name], ignore_error=True, timeout=deadlines.probe())
    except StepError:
        return None
    match = _ID_LINE.search(strip_ansi(result.stdout)) if result.status == 0 else None
    return match.group(1) if match else None


def is_workload(labels: dict[str, str]) -> bool:
    """Not a 0.1.x supervisor companion (a container without a role label is the only one)."""
    return not any(labels.get(key) == SUPERVISOR_ROLE for key in ROLE_LABELS)


def in_workspace(labels: dict[str, str], workspace: str | None) -> bool:
    """Only a container that carries a workspace label can be in another workspace (≤0.0.87 have none)."""
    return not workspace or labels.get(WORKSPACE_LABEL, workspace) == workspace


def find_sandbox_container(
    name: str, *, running: bool = True, sandbox_id_: str | None = None, ask_gateway: bool = True,
    workspace: str | None = None,
) -> Any:
    """The sandbox's (workload) container; a StepError naming the sandbox if there is none or several.

    `ask_gateway=False` never runs `openshell sandbox get` (which records the sandbox as the
    CLI's last-used one): for read-only runs such as `upgrade-sandboxes --check`. `workspace`
    (from the listing) narrows a name-based search on gateways that have workspaces.
    """
    client = docker_client()
    sid = sandbox_id_ or (sandbox_id(name) if ask_gateway else None)
    if sid is not None:
        found = client.containers.list(all=not running, filters={"label": f"{SANDBOX_ID_LABEL}={sid}"})
        found = [c for c in found if c.labels.get(SANDBOX_ID_LABEL) == sid and c.labels.get(SANDBOX_LABEL, name) == name]
    else:
        found = client.containers.list(all=not running, filters={"label": f"{SANDBOX_LABEL}={name}"})
        found = [c for c in found if c.labels.get(SANDBOX_LABEL) == name and in_workspace(c.labels, workspace)]
    found = [c for c in found if is_workload(c.labels)]
    if not found:
        state = "running " if running else ""
        raise StepError(f"no {state}container labelled {SANDBOX_LABEL}={name}", kind="docker")
    if len(found) > 1:
        names = ", ".join(c.name for c in found)
        raise StepError(f"several containers are labelled {SANDBOX_LABEL}={name}: {names}", kind="docker")
    return found[0]


def has_container(name: str, sandbox_id_: str | None = None) -> bool:
    """Whether the sandbox has a (workload) container in any state: by the listed id when there
    is one, else by name. Docker's container list only, never an inspect, so it answers while
    another run streams the container's archive (Docker holds the container's lock for that:
    docs/reference/deadlines.md)."""
    label = f"{SANDBOX_ID_LABEL}={sandbox_id_}" if sandbox_id_ else f"{SANDBOX_LABEL}={name}"
    rows = docker_client().api.containers(all=True, filters={"label": label})
    return any(is_workload(r.get("Labels") or {}) and (r.get("Labels") or {}).get(SANDBOX_LABEL, name) == name
               for r in rows)


def stopped_workload(name: str, sandbox_id_: str | None, workspace: str | None = None) -> Any | None:
    """The sandbox's workload container if it is not running (state `exited` or `created`),
    else None. By the listed sandbox id when there is one (never `sandbox get`)."""
    try:
        container = find_sandbox_container(name, running=False, sandbox_id_=sandbox_id_, ask_gateway=False,
                                           workspace=workspace)
    except StepError:
        return None
    return container if container.status in NOT_RUNNING_STATES else None


def root_from_workdir(workdir: str | None) -> str:
    """The data-root rule: the image's WorkingDir unless it is empty, `/` or `/sandbox`."""
    wd = posixpath.normpath(workdir) if workdir else ""
    return COMPAT_ROOT if wd in ("", ".", "/", COMPAT_ROOT) else wd


def data_root(container: Any) -> str:
    """The sandbox's data root, from its image's OCI WorkingDir (`/sandbox` when unreadable)."""
    import docker.errors

    try:
        image = docker_client().images.get(container.attrs.get("Image") or container.image.id)
        workdir = (image.attrs.get("Config") or {}).get("WorkingDir")
    except (docker.errors.DockerException, StepError, AttributeError):
        workdir = None
    return root_from_workdir(workdir)


def agent_at_root(agent: Any, container: Any) -> Any:
    """`agent` (an AgentSpec) with its directory and home moved to `container`'s data root."""
    root = data_root(container)
    return attrs.evolve(agent, dir=rebase(agent.dir, root), home=rebase(agent.home_dir, root))
