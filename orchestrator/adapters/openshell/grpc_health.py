"""The running gateway's version from its gRPC `Health` reply.

`Health` is unauthenticated and has kept the same two fields in every release (status = 1,
version = 2), so it is the one probe that works across any CLI/gateway pair, including a
0.0.x/0.1.x mix; the HTTP `/readyz` needs a health port that is off by default
(docs/reference/openshell-versions.md, "How the running version is read").

The SDK's `SandboxClient.from_active_cluster()` does not honour `OPENSHELL_GATEWAY_ENDPOINT`,
`-g` or the system registry, so it could ask another gateway than the CLI's. We therefore
resolve the registration ourselves (`registration.resolve_target`) and open the channel to it.

The call is made with grpcio alone, and the reply's two fields are read by `decode_health`:
importing NVIDIA's SDK for one RPC would load protobuf, httpx and rich too (about 0.4 s of every
guarded run's preflight on a 2-core machine). The SDK's own messages are the tests' oracle
(tests/openshell/test_grpc_health.py). grpc is imported only when a probe runs.
"""

from __future__ import annotations

import attrs

from .cli import parse_version
from .registration import GatewayTarget

HEALTH_TIMEOUT = 3.0
HEALTH_METHOD = "/openshell.v1.OpenShell/Health"  # service openshell.v1.OpenShell, rpc Health
_WIRE_TYPE = {1: 0, 2: 2}  # HealthResponse: status is a varint (enum), version length-delimited


@attrs.frozen
class HealthReply:
    """What `Health` said (`version`), or why it could not be asked (`error`)."""

    target: GatewayTarget
    version: str | None
    error: str | None = None


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        b = data[at]
        at += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, at
        shift += 7


def decode_health(data: bytes) -> tuple[int | None, str | None]:
    """(status, version) of a serialized `HealthResponse`; other fields are skipped, as a
    protobuf decoder does, and a repeated field keeps its last value. ValueError when malformed."""
    status: int | None = None
    version: str | None = None
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire != _WIRE_TYPE.get(field, wire):
            raise ValueError(f"field {field} has wire type {wire}")
        if wire == 0:
            value, at = _varint(data, at)
            if field == 1:
                status = value
        elif wire == 2:
            size, at = _varint(data, at)
            if at + size > len(data):
                raise ValueError(f"field {field} runs past the end of the reply")
            if field == 2:
                version = data[at:at + size].decode("utf-8")  # UnicodeDecodeError is a ValueError
            at += size
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
            if at > len(data):
                raise ValueError(f"field {field} runs past the end of the reply")
        else:
            raise ValueError(f"unsupported wire type {wire} in field {field}")
    return status, version


def _rpc_error(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    code = code() if callable(code) else code
    details = getattr(exc, "details", None)
    details = details() if callable(details) else details
    name = getattr(code, "name", None) or (str(code) if code else type(exc).__name__)
    return f"{name}: {details or exc}".strip()


def grpc_health(target: GatewayTarget, timeout: float = HEALTH_TIMEOUT) -> HealthReply:
    """Call `Health` on `target` (plaintext, or TLS with the registration's files); never raises."""
    try:
        import grpc
    except ImportError as exc:  # a broken install: report, do not crash the preflight
        return HealthReply(target, None, f"grpcio is not importable: {exc}")
    try:
        if target.tls is None:
            channel = grpc.insecure_channel(target.authority)
        else:
            t = target.tls
            credentials = grpc.ssl_channel_credentials(
                root_certificates=t.ca.read_bytes() if t.ca else None,  # None: the system roots
                private_key=t.key.read_bytes() if t.key else None,
                certificate_chain=t.cert.read_bytes() if t.cert else None,
            )
            channel = grpc.secure_channel(target.authority, credentials)
    except Exception as exc:  # noqa: BLE001 - unreadable cert files and the like
        return HealthReply(target, None, f"cannot build a client for {target.url}: {exc}")
    try:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(HEALTH_METHOD, request_serializer=lambda _request: b"",  # HealthRequest{}
                                   response_deserializer=lambda raw: raw)
        raw = call(b"", timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - grpc.RpcError and whatever a broken channel raises
        return HealthReply(target, None, _rpc_error(exc))
    finally:
        channel.close()
    try:
        _status, text = decode_health(raw)
    except ValueError as exc:
        return HealthReply(target, None, f"unreadable Health reply from {target.url}: {exc}")
    version = parse_version(text or "")
    return HealthReply(target, version, None if version else "Health reply carries no version")
