"""The running gateway's version from its gRPC `Health` reply, through NVIDIA's Python SDK.

`Health` is unauthenticated and has kept the same two fields in every release (status = 1,
version = 2), so it is the one probe that works across any CLI/gateway pair, including a
0.0.x/0.1.x mix; the HTTP `/readyz` needs a health port that is off by default
(docs/reference/openshell-versions.md, "How the running version is read").

The SDK's `SandboxClient.from_active_cluster()` does not honour `OPENSHELL_GATEWAY_ENDPOINT`,
`-g` or the system registry, so it could ask another gateway than the CLI's. We therefore
resolve the registration ourselves (`registration.resolve_target`) and construct the SDK's
`SandboxClient(endpoint, tls=TlsConfig(...))` directly, then call its `health()`.

The SDK (and grpc) is imported only when a probe runs: `nemoclaw --help` must stay light.
"""

from __future__ import annotations

import attrs

from .cli import parse_version
from .registration import GatewayTarget

HEALTH_TIMEOUT = 3.0


@attrs.frozen
class HealthReply:
    """What `Health` said (`version`), or why it could not be asked (`error`)."""

    target: GatewayTarget
    version: str | None
    error: str | None = None


def _sdk_error(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    code = code() if callable(code) else code
    details = getattr(exc, "details", None)
    details = details() if callable(details) else details
    name = getattr(code, "name", None) or (str(code) if code else type(exc).__name__)
    return f"{name}: {details or exc}".strip()


def grpc_health(target: GatewayTarget, timeout: float = HEALTH_TIMEOUT) -> HealthReply:
    """Call `Health` on `target` with the official SDK; never raises."""
    try:
        from openshell import SandboxClient, TlsConfig
    except ImportError as exc:  # a broken install: report, do not crash the preflight
        return HealthReply(target, None, f"the OpenShell Python SDK is not importable: {exc}")
    tls = None
    if target.tls is not None:
        tls = TlsConfig(ca_path=target.tls.ca, cert_path=target.tls.cert, key_path=target.tls.key)
    try:
        client = SandboxClient(target.authority, tls=tls, timeout=timeout, cluster_name=target.name)
    except Exception as exc:  # noqa: BLE001 - unreadable cert files and the like
        return HealthReply(target, None, f"cannot build a client for {target.url}: {exc}")
    try:
        reply = client.health()
    except Exception as exc:  # noqa: BLE001 - grpc.RpcError or the SDK's GatewayError
        return HealthReply(target, None, _sdk_error(exc))
    finally:
        client.close()
    version = parse_version(getattr(reply, "version", "") or "")
    return HealthReply(target, version, None if version else "Health reply carries no version")
