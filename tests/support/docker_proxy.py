"""A recording proxy in front of the Docker engine's Unix socket, for the tests that prove which
Engine API calls a program makes (and which it never makes: start, stop, kill, restart or remove
of a managed container).

    with DockerProxy(engine_socket) as proxy:
        run the program with DOCKER_HOST=proxy.docker_host
    proxy.requests   # [("POST", "/v1.41/containers/<id>/archive?..."), ...] in the order sent

Every byte is relayed unchanged in both directions (keep-alive, streamed archives and the
upgraded exec connections alike); the client's stream is scanned for HTTP request lines. Only
the program given `docker_host` goes through it: the stand-in's gateway, which is OpenShell,
keeps talking to the engine directly, so what the proxy sees is what the program itself did.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
from pathlib import Path

_REQUEST_LINE = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (/[^ \r\n]*) HTTP/1\.[01]\r\n")
_CONTAINER_VERB = re.compile(r"^(?:/v[0-9.]+)?/containers/([^/?]+)/(start|stop|kill|restart|pause|unpause)\b")
_CONTAINER = re.compile(r"^(?:/v[0-9.]+)?/containers/([^/?]+)(?:\?|$)")


def engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert host.startswith("unix://"), f"the proxy relays a Unix socket engine, not {host}"
    return host[len("unix://"):]


class DockerProxy:
    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream or engine_socket()
        self._dir = tempfile.mkdtemp(prefix="dkp", dir="/tmp")  # short: a socket path has ~100 bytes
        self.path = str(Path(self._dir) / "docker.sock")
        self._streams: list[bytearray] = []
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(64)
        self._closing = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def __enter__(self) -> "DockerProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        self._server.close()
        try:
            os.unlink(self.path)
            os.rmdir(self._dir)
        except OSError:
            pass

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            seen = bytearray()
            with self._lock:
                self._streams.append(seen)
            threading.Thread(target=self._pipe, args=(client, upstream, seen), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, seen: bytearray | None) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if seen is not None:
                    seen += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self._lock:
            streams = [bytes(s) for s in self._streams]
        return [(m.group(1).decode(), m.group(2).decode("latin-1")) for s in streams for m in _REQUEST_LINE.finditer(s)]

    def container_calls(self) -> list[tuple[str, str, str]]:
        """(verb, container id or name, path) of every start/stop/kill/restart/pause/unpause and
        every DELETE of a container that went through the proxy."""
        found = []
        for method, path in self.requests:
            m = _CONTAINER_VERB.match(path)
            if method == "POST" and m:
                found.append((m.group(2), m.group(1), path))
            elif method == "DELETE" and (m := _CONTAINER.match(path)):
                found.append(("remove", m.group(1), path))
        return found
