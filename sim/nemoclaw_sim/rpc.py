"""The CLI's client for the gateway's gRPC stand-in, with tonic's failure shapes
(docs/reference/openshell-cli-and-gateway.md, "Unreachable gateway", "Version skew")."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlparse

from . import term
from .versions import Version, tonic_014

# tonic's mapping of a non-gRPC HTTP answer to a status code.
_HTTP_TO_GRPC = {400: "Internal", 401: "Unauthenticated", 403: "PermissionDenied", 404: "Unimplemented",
                 429: "Unavailable", 502: "Unavailable", 503: "Unavailable", 504: "Unavailable"}


class RpcStatus(Exception):
    """A gRPC status as the CLI received it; `str()` is tonic's Display of it. (A plain class:
    `dataclasses` imports `inspect`, a sixth of the CLI's start-up.)"""

    def __init__(self, code: str, message: str, headers: dict[str, str], cli_version: Version) -> None:
        super().__init__(code, message)
        self.code, self.message, self.headers, self.cli_version = code, message, headers, cli_version

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


def _http(endpoint: str, method: str, path: str, timeout: float, body: bytes = b"",
          headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str], bytes]:
    """One HTTP/1.1 exchange on a fresh connection, `Connection: close`: (status, reason, headers
    lower-cased, body). A plain socket, not http.client: importing http.client (and the email
    package under it) is most of this program's start-up, and the CLI is run many times a run.
    Raises OSError (ConnectionResetError when the server closes without an answer)."""
    u = urlparse(endpoint)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}:{port}", "connection: close",
             f"content-length: {len(body)}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        raw = bytearray()
        while (end := raw.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionResetError("Remote end closed connection without response")
            raw += chunk
        status_line, *header_lines = raw[:end].decode("latin-1").split("\r\n")
        words = status_line.split(" ", 2)
        if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
            raise ConnectionResetError("Remote end closed connection without response")
        got: dict[str, str] = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            got[k.strip().lower()] = v.strip()
        length = int(got["content-length"]) if got.get("content-length", "").isdigit() else None
        data = raw[end + 4:]
        # Up to the content-length when there is one: a server that keeps the connection open
        # despite `Connection: close` must not hold the read until the timeout.
        while (length is None or len(data) < length) and (chunk := sock.recv(1 << 16)):
            data += chunk
    chunked = got.get("transfer-encoding", "").lower() == "chunked"
    return int(words[1]), words[2] if len(words) > 2 else "", got, _dechunk(bytes(data)) if chunked else bytes(data[:length])


def _dechunk(data: bytes) -> bytes:
    """The body of a chunked transfer encoding (chunk extensions ignored; ends at the 0 chunk)."""
    out, at = bytearray(), 0
    while (eol := data.find(b"\r\n", at)) >= 0:
        size = int(data[at:eol].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[eol + 2:eol + 2 + size]
        at = eol + 2 + size + 2
    return bytes(out)


def call(endpoint: str, rpc: str, message: dict[str, Any], cli_version: Version, timeout: float = 120.0) -> dict[str, Any]:
    """One unary RPC. Raises TransportError (connect failed) or RpcStatus."""
    body = json.dumps({"message": message}).encode()
    try:
        status, _reason, headers, raw = _http(endpoint, "POST", f"/openshell.v1.OpenShell/{rpc}", timeout, body, {
            "content-type": "application/grpc+json", "te": "trailers",
            "x-openshell-client-version": str(cli_version)})
    except OSError as e:
        raise TransportError(e) from e
    if status != 200 or not headers.get("content-type", "").startswith("application/grpc"):
        code = _HTTP_TO_GRPC.get(status, "Unknown")
        raise RpcStatus(code, f"grpc-status header missing, mapped from HTTP status code {status}", headers, cli_version)
    data = json.loads(raw or b"{}")
    if "status" in data:
        st = data["status"]
        raise RpcStatus(st.get("code", "Unknown"), st.get("message", ""), st.get("metadata") or {}, cli_version)
    return data.get("message") or {}


def http_health_status(endpoint: str, timeout: float = 10.0) -> tuple[int, str]:
    """`GET <server>/healthz` on the main port: (code, reason). Raises TransportError."""
    try:
        status, reason, _headers, _body = _http(endpoint, "GET", "/healthz", timeout)
        return status, reason
    except OSError as e:
        raise TransportError(e) from e


def decode_status(message: str, cli_version: Version) -> RpcStatus:
    """A client-side decode failure: tonic reports it as Internal with empty metadata."""
    return RpcStatus("Internal", message, {}, cli_version)
