"""One read-only Docker Engine API request without the docker SDK, for the preflight.

Importing the SDK (requests, urllib3, their TLS and HTTP stacks) costs 0.2-0.9 s on the 2-core
machines bench/ measures on: more than all the rest of a refused `backup-all`, which only asks
the engine one question (is there a cluster container, and what is it). `get_json` asks it over
the engine's Unix socket with the standard library's HTTP client. Any other DOCKER_HOST (tcp,
ssh, TLS settings) is the SDK's job: `get_json` then answers `SDK`, and the caller uses it.
Not httpx either: importing it costs 0.10 s more than http.client here (146-148 ms against
47-54 ms, 3 runs at load 3.4), on the path every refusal takes (issue 25's 0.15 s budget).
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any
from urllib.parse import quote

SDK = object()
"""`get_json`'s answer when this DOCKER_HOST needs the docker SDK."""

_DEFAULT_SOCKET = "/var/run/docker.sock"
_API = "/v1.41"  # the SDK's own default API version (docker 7): Engine 20.10 and later


def _socket_path(env: Any) -> str | None:
    if env.get("DOCKER_TLS_VERIFY") or env.get("DOCKER_CERT_PATH"):
        return None
    host = (env.get("DOCKER_HOST") or "").strip()
    if not host:
        return _DEFAULT_SOCKET
    if host.startswith("unix://"):
        return host[len("unix://"):] or _DEFAULT_SOCKET
    return None


def get_json(path: str, *, timeout: float, env: Any = None) -> Any:
    """GET `path` (e.g. `/containers/NAME/json`) from the engine: the decoded JSON for a 200,
    None for any other status or an engine that does not answer, or `SDK` when DOCKER_HOST is
    not a Unix socket (use the docker SDK then)."""
    import http.client

    found = _socket_path(os.environ if env is None else env)
    if found is None:
        return SDK
    sock_path: str = found

    class _Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(sock_path)
            except BaseException:
                s.close()
                raise
            self.sock = s

    conn = _Unix("localhost", timeout=timeout)
    try:
        conn.request("GET", _API + quote(path), headers={"Accept": "application/json"})
        res = conn.getresponse()
        body = res.read()
        if res.status != 200:
            return None
        return json.loads(body)
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()
