"""The gateway schema preflight and the RPC-result check (docs/reference/gateway-preflight.md).

`observe()` gathers every fact once, running the independent probes concurrently; `decide()`
is a pure function of those facts, so the doctor (`nemoclaw gateway check`) and the
workflow's `preflight` step always agree. Order as upstream: cluster image drift → host
binary drift → (ours) served-version drift. An unknown version is never drift: the preflight
fails open and the RPC-result check fails closed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Union

import attrs

from .binary import gateway_bin_version, resolve_gateway_bin, served_version
from .. import deadlines
from .cli import CaptureResult, probe_openshell_version, require_openshell, strip_ansi
from .cluster import ClusterInfo, cluster_container_name, inspect_cluster, is_cluster_active
from .health import (
    DEFAULT_GATEWAY,
    GatewayProbes,
    probe_gateway,
    reported_gateway_name,
    status_connected,
    status_server,
    status_version,
)
from .grpc_health import grpc_health
from .marker import RuntimeMarker, find_health_port, is_live_gateway, read_marker
from .registration import resolve_target
from .rpc_errors import is_protobuf_mismatch

IMAGE_DRIFT = "image_drift"
HOST_PROCESS_DRIFT = "host_process_drift"
SERVED_VERSION_DRIFT = "served_version_drift"
PROTOBUF_MISMATCH = "protobuf_mismatch"
PHASE_UNSPECIFIED = "phase_unspecified"
GATEWAY_MIGRATION = "gateway_migration"
REACTIVE_KINDS = frozenset({PROTOBUF_MISMATCH, PHASE_UNSPECIFIED, GATEWAY_MIGRATION})
"""Issues seen on a result (not predicted by the preflight): worded "was detected while"."""


@attrs.frozen
class ImageDrift:
    container_name: str
    current_image: str
    current_version: str
    expected_version: str


@attrs.frozen
class HostProcessDrift:
    gateway_bin: str | None
    current_version: str
    expected_version: str


@attrs.frozen
class ServedVersionDrift:
    """The live gateway *process* answers with another version than the installed CLI."""

    endpoint: str
    current_version: str
    expected_version: str


Drift = Union[ImageDrift, HostProcessDrift, ServedVersionDrift]


@attrs.frozen
class StateRpcIssue:
    """Why OpenShell sandbox state can't be trusted. `kind` is also the Refusal reason."""

    kind: str
    drift: Drift | None = None
    output: str = ""
    cause: str | None = None


@attrs.frozen
class Observation:
    """Everything the preflight looked at, for `decide()` and for the doctor's table."""

    gateway: str
    openshell_bin: str
    cli_version: str | None
    probes: GatewayProbes
    cluster: ClusterInfo | None
    cluster_active: bool
    marker: RuntimeMarker | None
    marker_live: bool
    gateway_bin: str | None
    gateway_bin_version: str | None
    health_port: int | None
    served_version: str | None
    served_endpoint: str | None
    served_source: str | None  # "grpc" | "readyz" | "status" | None
    grpc_error: str | None = None  # why gRPC Health gave no version, when it was asked
    hung: tuple[str, ...] = ()
    """The `openshell` calls that did not answer within their deadline (adapters/deadlines.py):
    the CLI or its gateway hangs, so nothing it would say can be checked."""


def _served_from_status(probes: GatewayProbes) -> tuple[str | None, str | None]:
    """`openshell status` `Version:` is the gateway's own Health reply, when it's ours and connected."""
    status = strip_ansi(probes.status)
    if reported_gateway_name(status) != probes.gateway or not status_connected(status):
        return None, None
    return status_version(status), status_server(status)


def observe(
    gateway: str = DEFAULT_GATEWAY,
    *,
    state_dir: Path,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Observation:
    """Probe CLI, gateway texts, cluster container, marker, binary and served version (read-only).

    The served version comes first from gRPC `Health` at the gateway the CLI resolves, then
    from `/readyz` when a live gateway's health port is known, then from `openshell status`."""
    env = os.environ if env is None else env
    timeout = deadlines.probe() if timeout is None else timeout
    openshell = require_openshell(env)
    marker = read_marker(state_dir)
    target = resolve_target(env)
    with ThreadPoolExecutor(max_workers=7) as pool:
        f_grpc = pool.submit(grpc_health, target) if target is not None else None
        f_cli = pool.submit(probe_openshell_version, binary=openshell, timeout=timeout)
        f_probes = pool.submit(probe_gateway, gateway, binary=openshell)
        f_cluster = pool.submit(inspect_cluster, gateway, timeout=timeout)
        f_live = pool.submit(lambda: marker is not None and is_live_gateway(marker.pid, marker.gateway_bin))
        f_bin = pool.submit(resolve_gateway_bin, marker, openshell, env)
        f_port = pool.submit(find_health_port, marker)
        gateway_bin = f_bin.result()
        f_binver = pool.submit(gateway_bin_version, gateway_bin, timeout)
        port = f_port.result() if f_live.result() else None
        health = f_grpc.result() if f_grpc is not None else None
        probes, cluster = f_probes.result(), f_cluster.result()
        served: str | None
        source: str | None
        endpoint: str | None
        if health is not None and health.version:
            served, source, endpoint = health.version, "grpc", health.target.url
        else:  # /readyz only when gRPC Health gave no version: the HTTP client is imported for that alone
            served, source = served_version(port), "readyz"
            endpoint = (marker.endpoint if marker and marker.endpoint else None) or (
                f"http://127.0.0.1:{port}" if port else None
            )
        if served is None:
            served, endpoint = _served_from_status(probes)
            source = "status" if served else None
        cli_version, cli_hung = f_cli.result()
        return Observation(
            gateway=gateway,
            openshell_bin=openshell,
            cli_version=cli_version,
            probes=probes,
            cluster=cluster,
            cluster_active=is_cluster_active(cluster, probes),
            marker=marker,
            marker_live=f_live.result(),
            gateway_bin=gateway_bin,
            gateway_bin_version=f_binver.result(),
            health_port=port,
            served_version=served,
            served_endpoint=endpoint if served else None,
            served_source=source,
            grpc_error=health.error if health is not None else None,
            hung=(("openshell --version",) if cli_hung else ()) + probes.hung,
        )


def image_drift(obs: Observation) -> ImageDrift | None:
    expected, cluster = obs.cli_version, obs.cluster
    if not expected or cluster is None or not obs.cluster_active or not cluster.image:
        return None
    current = cluster.version
    if not current or current == expected:
        return None
    return ImageDrift(cluster_container_name(obs.gateway), cluster.image, current, expected)


def host_process_drift(obs: Observation) -> HostProcessDrift | None:
    """Only an *active* cluster suppresses this; a stopped leftover container does not."""
    if obs.cluster is not None and obs.cluster.image and obs.cluster_active:
        return None
    expected, current = obs.cli_version, obs.gateway_bin_version
    if not expected or not obs.gateway_bin or not current or current == expected:
        return None
    return HostProcessDrift(obs.gateway_bin, current, expected)


def served_version_drift(obs: Observation) -> ServedVersionDrift | None:
    expected, current = obs.cli_version, obs.served_version
    if not expected or not current or current == expected:
        return None
    return ServedVersionDrift(obs.served_endpoint or "running gateway", current, expected)


def known_drift(obs: Observation) -> Drift | None:
    return image_drift(obs) or host_process_drift(obs) or served_version_drift(obs)


def decide(obs: Observation) -> StateRpcIssue | None:
    """The preflight verdict: the first drift found, else None (unknown versions pass)."""
    drift = known_drift(obs)
    if drift is None:
        return None
    kind = {ImageDrift: IMAGE_DRIFT, HostProcessDrift: HOST_PROCESS_DRIFT, ServedVersionDrift: SERVED_VERSION_DRIFT}
    return StateRpcIssue(kind[type(drift)], drift)


def result_issue(result: CaptureResult, *, phases: list[str] | None = None) -> str | None:
    """Which reactive issue kind a `sandbox list` result shows, if any (status is ignored).

    `phases` are the parsed sandbox phases: all `Unspecified` is the silent 0.0.52↔0.0.53 break.
    """
    if is_protobuf_mismatch(result.output):
        return PROTOBUF_MISMATCH
    if phases and all(p == "Unspecified" for p in phases):
        return PHASE_UNSPECIFIED
    return None
