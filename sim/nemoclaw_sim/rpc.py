"""The CLI's client for the gateway's gRPC stand-in, with tonic's failure shapes
(docs/reference/openshell-cli-and-gateway.md, "Unreachable gateway", "Version skew")."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from . import term
from .versions import Version, tonic_014

# tonic's mapping of a non-gRPC HTTP answer to a status code.
_HTTP_TO_GRPC = {400: "Internal", 401: "Unauthenticated", 403: "PermissionDenied", 404: "Unimplemented",
                 429: "Unavailable", 502: "Unavailable", 503: "Unavailable", 504: "Unavailable"}


@dataclass
class RpcStatus(Exception):
    """A gRPC status as the CLI received it; `str()` is tonic's Display of it."""

    code: str
    message: str
    headers: dict[str, str]
    cli_version: Version

    def __str__(self) -> str:
        return term.tonic_status(self.code, self.message, self.headers, tonic14=tonic_014(self.cli_version))


class TransportError(Exception):
    """Could not reach the gateway at all; carries the OS error for the cause chain."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(str(os_error))
        self.os_error = os_error

    @property
    def leaf(self) -> str:
        e = self.os_error
        if isinstance(e, ConnectionRefusedError):
            return "Connection refused (os error 111)"
        if e.errno and e.strerror:
            return f"{e.strerror} (os error {e.errno})"
        return str(e) or type(e).__name__


def _conn(endpoint: str, timeout: float) -> http.client.HTTPConnection:
    u = urlparse(endpoint)
    return http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=timeout)


def call(endpoint: str, rpc: str, message: dict[str, Any], cli_version: Version, timeout: float = 120.0) -> dict[str, Any]:
    """One unary RPC. Raises TransportError (connect failed) or RpcStatus."""
    body = json.dumps({"message": message}).encode()
    conn = _conn(endpoint, timeout)
    try:
        conn.request("POST", f"/openshell.v1.OpenShell/{rpc}", body=body, headers={
            "content-type": "application/grpc+json", "te": "trailers",
            "x-openshell-client-version": str(cli_version)})
        resp = conn.getresponse()
        raw = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
    except OSError as e:
        raise TransportError(e) from e
    finally:
        conn.close()
    if resp.status != 200 or not headers.get("content-type", "").startswith("application/grpc"):
        code = _HTTP_TO_GRPC.get(resp.status, "Unknown")
        raise RpcStatus(code, f"grpc-status header missing, mapped from HTTP status code {resp.status}", headers, cli_version)
    data = json.loads(raw or b"{}")
    if "status" in data:
        st = data["status"]
        raise RpcStatus(st.get("code", "Unknown"), st.get("message", ""), st.get("metadata") or {}, cli_version)
    return data.get("message") or {}


def http_health_status(endpoint: str, timeout: float = 10.0) -> tuple[int, str]:
    """`GET <server>/healthz` on the main port: (code, reason). Raises TransportError."""
    conn = _conn(endpoint, timeout)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.reason
    except OSError as e:
        raise TransportError(e) from e
    finally:
        conn.close()


def decode_status(message: str, cli_version: Version) -> RpcStatus:
    """A client-side decode failure: tonic reports it as Internal with empty metadata."""
    return RpcStatus("Internal", message, {}, cli_version)
