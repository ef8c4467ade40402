"""Reading gateway health from `openshell status` / `gateway info` text
(docs/reference/gateway-recovery.md).

Upstream decides "is the NemoClaw gateway healthy" and "which recovery state are we in" from
the CLI's text alone; these are pure functions of that text so they can be tested against the
exact captured outputs, and probed once and shared by the drift check and recovery.
"""

from __future__ import annotations


import re
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from .. import deadlines
from .cli import OpenShellSpawnError, capture_openshell, strip_ansi

DEFAULT_GATEWAY = "nemoclaw"

_REPORTED_NAME = re.compile(r"^\s*Gateway:\s+([^\s]+)", re.M)
_ACTIVE_NAME = re.compile(r"^\s*Gateway:\s+(.+?)\s*$", re.M)
_ERRORISH = re.compile(r"\b(Error|transport error|client error)\b", re.I)
_DOWN = re.compile(r"Connection refused|Connection reset|No active gateway", re.I)
_CONNECTED_LINE = re.compile(r"^\s*Status:\s*Connected\b", re.I | re.M)
_REFUSING = re.compile(r"Connection refused|client error \(Connect\)|tcp connect error", re.I)
_ENDPOINT = re.compile(r"^\s*Gateway endpoint:\s+(\S+)\s*$", re.M)
_SERVER = re.compile(r"^\s*Server:\s+(\S+)\s*$", re.M)
_STATUS_VERSION = re.compile(r"^\s*Version:\s+(\S+)\s*$", re.M)

HEALTHY_NAMED = "healthy_named"
NAMED_UNREACHABLE = "named_unreachable"
NAMED_UNHEALTHY = "named_unhealthy"
CONNECTED_OTHER = "connected_other"
MISSING_NAMED = "missing_named"
RECOVERABLE_STATES = (MISSING_NAMED, NAMED_UNHEALTHY, NAMED_UNREACHABLE)
"""The states backup-all/upgrade-sandboxes let recovery act on (docs/reference/gateway-recovery.md, "Named-gateway states")."""


def status_connected(status: str) -> bool:
    r"""`openshell status` has a `Status: Connected` line (upstream's `/^\s*Status:\s*Connected\b/im`)."""
    return _CONNECTED_LINE.search(strip_ansi(status)) is not None


def reported_gateway_name(text: str) -> str | None:
    m = _REPORTED_NAME.search(strip_ansi(text))
    return m.group(1) if m else None


def is_gateway_connected(status: str) -> bool:
    """Upstream quirk kept: a bare `Server Status` header counts as connected."""
    clean = strip_ansi(status)
    if _ERRORISH.search(clean) or _DOWN.search(clean):
        return False
    return "Connected" in clean or "Server Status" in clean


def has_stale_gateway(named_info: str, gateway: str = DEFAULT_GATEWAY) -> bool:
    return bool(named_info) and f"Gateway: {gateway}" in named_info and "No gateway metadata found" not in named_info


def has_active_gateway_info(active_info: str) -> bool:
    return "Gateway endpoint:" in active_info and "No gateway metadata found" not in active_info


def is_gateway_healthy(status: str, named_info: str, active_info: str, gateway: str = DEFAULT_GATEWAY) -> bool:
    """upstream isGatewayHealthy: connected to `gateway`, or silent status but both infos agree."""
    active_name = reported_gateway_name(status) or reported_gateway_name(active_info)
    if is_gateway_connected(status) and active_name == gateway:
        return True
    return (
        not strip_ansi(status).strip()
        and has_stale_gateway(named_info, gateway)
        and has_active_gateway_info(active_info)
        and active_name == gateway
    )


def lifecycle_state(status: str, named_info: str, gateway: str = DEFAULT_GATEWAY) -> str:
    """upstream getNamedGatewayLifecycleState, from `status` and `gateway info -g <gw>` (stderr included)."""
    s, info = strip_ansi(status), strip_ansi(named_info)
    m = _ACTIVE_NAME.search(s)
    active = m.group(1) if m else None
    connected = status_connected(s)
    named = f"Gateway: {gateway}" in info
    refusing = bool(_REFUSING.search(s))
    if connected and active == gateway and named:
        return HEALTHY_NAMED
    if active == gateway and named and refusing:
        return NAMED_UNREACHABLE
    if active == gateway and named:
        return NAMED_UNHEALTHY
    if connected:
        return CONNECTED_OTHER
    return MISSING_NAMED


def endpoint_url(info: str) -> str | None:
    """`Gateway endpoint:` of the offline `gateway info` (≤0.0.84), else the `Server:` line of the
    live probe that replaced it in 0.0.85 (docs/reference/openshell-versions.md)."""
    s = strip_ansi(info)
    m = _ENDPOINT.search(s) or _SERVER.search(s)
    return m.group(1) if m else None


def endpoint_port(url: str | None) -> int | None:
    """Explicit port, else 80/443 by scheme; None when unparsable (= cluster not active)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        if parts.port is not None:
            return parts.port
    except ValueError:
        return None
    return {"http": 80, "https": 443}.get(parts.scheme)


def accepts_connections(url: str | None, timeout: float = 1.0) -> bool:
    """A TCP connection to the URL's host and port (80/443 by scheme) succeeds."""
    port = endpoint_port(url)
    try:
        host = urlsplit(url).hostname if url else None
    except ValueError:
        return False
    if port is None or not host:
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def status_server(status: str) -> str | None:
    """The `Server:` (or e2e fake's `Gateway endpoint:`) URL of `openshell status`."""
    s = strip_ansi(status)
    m = _SERVER.search(s) or _ENDPOINT.search(s)
    return m.group(1) if m else None


def status_version(status: str) -> str | None:
    """`Version:` of `openshell status` is the *gateway's* version (its gRPC Health reply)."""
    m = _STATUS_VERSION.search(strip_ansi(status))
    return m.group(1) if m else None


@attrs.frozen
class GatewayProbes:
    """The three texts upstream's health checks read; probed once, read many times."""

    status: str
    named_info: str
    active_info: str
    gateway: str = DEFAULT_GATEWAY
    hung: tuple[str, ...] = ()
    """The probes that did not answer within their deadline (`openshell status`, ...)."""

    @property
    def healthy(self) -> bool:
        return is_gateway_healthy(self.status, self.named_info, self.active_info, self.gateway)

    @property
    def endpoint(self) -> str | None:
        return endpoint_url(self.active_info) or endpoint_url(self.named_info)

    @property
    def alive(self) -> bool:
        """Stricter than upstream's `healthy` (whose `Server Status` header alone counts as
        connected, even when the status call then failed): `Status: Connected` to this gateway
        AND its endpoint accepts a TCP connection right now. What a doctor may call healthy."""
        connected = status_connected(self.status)
        if not (connected and reported_gateway_name(self.status) == self.gateway):
            return False
        return accepts_connections(status_server(self.status) or self.endpoint)


def probe_gateway(
    gateway: str = DEFAULT_GATEWAY, *, binary: str | None = None, env: Mapping[str, str] | None = None
) -> GatewayProbes:
    """`openshell status`, `gateway info -g <gw>`, `gateway info` (stdout only, run at once, each
    within the probe bound: adapters/deadlines.py)."""
    timeout = deadlines.probe()

    def run(args: tuple[str, ...]) -> tuple[str, bool]:
        res = capture_openshell(list(args), ignore_error=True, timeout=timeout, binary=binary, env=env)
        return res.output, res.timed_out

    from concurrent.futures import ThreadPoolExecutor

    argvs = [("status",), ("gateway", "info", "-g", gateway), ("gateway", "info")]
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="gateway-probe") as pool:  # read-only: any order
        (status, s_hung), (named, n_hung), (active, a_hung) = pool.map(run, argvs)
    hung = tuple(" ".join(["openshell", *a]) for a, h in zip(argvs, (s_hung, n_hung, a_hung)) if h)
    return GatewayProbes(status, named, active, gateway, hung)


def lifecycle_probe(
    gateway: str = DEFAULT_GATEWAY, *, binary: str | None = None, env: Mapping[str, str] | None = None
) -> str:
    """Recovery's own probe: `status` and `gateway info -g` *with* stderr, the probe bound each."""

    def run(*args: str) -> str:
        try:
            return capture_openshell(list(args), timeout=deadlines.probe(), binary=binary, env=env).output
        except OpenShellSpawnError:  # a hung probe means "not healthy", not a crash
            return ""

    return lifecycle_state(run("status"), run("gateway", "info", "-g", gateway), gateway)
