"""The served version read from a gateway's health listener (`/readyz`), against a real HTTP
server on loopback: only a 200 with a JSON object carrying a version string counts."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from orchestrator.adapters.openshell.binary import served_version


def _serve(status: int, body: bytes):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path != "/readyz":
                self.send_error(404)
                return
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server


@pytest.mark.parametrize("status, body, expected", [
    (200, b'{"status":"ready","version":"0.0.116"}', "0.0.116"),
    (200, b'{"version":"v0.1.5"}', "0.1.5"),
    (503, b'{"version":"0.0.116"}', None),  # not ready: its word is not taken
    (200, b'not json', None),
    (200, b'["0.0.116"]', None),
    (200, b'{"version":116}', None),
    (200, b'{"version":"unknown"}', None),
])
def test_readyz_answers(status, body, expected):
    server = _serve(status, body)
    try:
        assert served_version(server.server_address[1]) == expected
    finally:
        server.shutdown()
        server.server_close()


def test_no_port_or_nothing_listening_is_no_version():
    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert served_version(port) is None
    assert served_version(None) is None and served_version(0) is None
