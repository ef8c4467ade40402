"""The legacy k3s-in-Docker gateway container `openshell-cluster-<gateway>`
(docs/reference/gateway-preflight.md).

Read through the Docker Engine API (honours DOCKER_HOST). Upstream runs `docker inspect` with
ignoreError, so an absent engine, an absent container or any API error all mean "no cluster":
the preflight must then go on to the host-process check rather than crash.
"""

from __future__ import annotations

import re

import attrs

from .health import GatewayProbes, endpoint_port

_OPENSHELL_CLUSTER = re.compile(r"openshell/cluster:([0-9]+\.[0-9]+\.[0-9]+)")
_NEMOCLAW_CLUSTER = re.compile(r"(?:^|/)nemoclaw-cluster:([0-9]+\.[0-9]+\.[0-9]+)(?:[-@]|$)")


def cluster_container_name(gateway: str) -> str:
    return f"openshell-cluster-{gateway}"


def parse_cluster_image_version(ref: str | None) -> str | None:
    """`…/openshell/cluster:0.0.36` or a fork's `nemoclaw-cluster:0.0.36-…` → `0.0.36`; else None."""
    if not ref:
        return None
    m = _OPENSHELL_CLUSTER.search(ref) or _NEMOCLAW_CLUSTER.search(ref)
    return m.group(1) if m else None


@attrs.frozen
class ClusterInfo:
    """What `docker inspect` says about the cluster container."""

    name: str
    image: str | None
    running: bool
    host_ports: frozenset[int]

    @property
    def version(self) -> str | None:
        return parse_cluster_image_version(self.image)


def _host_ports(ports: object) -> frozenset[int]:
    found: set[int] = set()
    if isinstance(ports, dict):
        for bindings in ports.values():
            for b in bindings or []:
                hp = str((b or {}).get("HostPort") or "").strip()
                if hp.isdigit():
                    found.add(int(hp))
    return frozenset(found)


def inspect_cluster(gateway: str, *, timeout: float | None = None) -> ClusterInfo | None:
    """Inspect `openshell-cluster-<gateway>` (within the probe bound, adapters/deadlines.py);
    None when there is none or no engine answers."""
    from .. import deadlines
    from ..engine_get import SDK, get_json

    name = cluster_container_name(gateway)
    bound = deadlines.probe() if timeout is None else timeout
    found = get_json(f"/containers/{name}/json", timeout=bound)  # no docker SDK import (engine_get.py)
    if found is not SDK:
        return _cluster_info(name, found) if isinstance(found, dict) else None
    import docker  # imported here: the CLI's import time matters, and tests may lack an engine

    try:
        client = docker.from_env(timeout=bound)  # type: ignore[arg-type]  # docker-py hands it to requests, which takes seconds as a float; the stubs say int
    except Exception:  # noqa: BLE001 - no engine configured/reachable = no cluster
        return None
    try:
        attrs_ = client.api.inspect_container(name)
    except Exception:  # noqa: BLE001 - NotFound, connection refused, API error: upstream's ""
        return None
    finally:
        client.close()
    return _cluster_info(name, attrs_)


def _cluster_info(name: str, attrs_: dict) -> ClusterInfo:
    image = ((attrs_.get("Config") or {}).get("Image") or "").strip() or None
    running = bool((attrs_.get("State") or {}).get("Running"))
    ports = _host_ports((attrs_.get("NetworkSettings") or {}).get("Ports"))
    if not ports and running:
        # Without a bridge network (network mode none, as on our test engines) the engine
        # reports no live bindings; a running container's configured bindings are what it serves.
        ports = _host_ports((attrs_.get("HostConfig") or {}).get("PortBindings"))
    return ClusterInfo(name=name, image=image, running=running, host_ports=ports)


def is_cluster_active(cluster: ClusterInfo | None, probes: GatewayProbes) -> bool:
    """The active check (docs/reference/gateway-preflight.md): healthy gateway, endpoint port known, container running and publishing it."""
    if cluster is None or not probes.healthy:
        return False
    port = endpoint_port(probes.endpoint)
    if port is None:
        return False
    return cluster.running and port in cluster.host_ports
