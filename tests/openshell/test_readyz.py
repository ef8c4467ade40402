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


# Each way of getting no version is its own error type (adapters/openshell/readyz.py).

def _free_port() -> int:
    with socket.socket() as s:  # free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listening_is_refused():
    from orchestrator.adapters.openshell.readyz import ReadyzRefused, read_readyz

    port = _free_port()
    with pytest.raises(ReadyzRefused) as info:
        read_readyz(port)
    assert info.value.url == f"http://127.0.0.1:{port}/readyz" and "refused" in str(info.value)


def test_a_listener_that_never_answers_is_a_timeout_and_is_not_retried():
    from orchestrator.adapters.openshell.readyz import ReadyzTimeout, read_readyz

    with socket.socket() as listener:  # the kernel completes the connection; nobody answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        with pytest.raises(ReadyzTimeout) as info:
            read_readyz(listener.getsockname()[1], timeout=0.2)
        assert "no answer within 0.2 s" in str(info.value)
        listener.setblocking(False)
        accepted = []
        try:
            while True:
                accepted.append(listener.accept()[0])
        except BlockingIOError:
            pass
        for conn in accepted:
            conn.close()
        assert len(accepted) == 1  # one attempt: the deadline was spent


def test_a_connection_closed_before_an_answer_is_tried_again_then_refused():
    from orchestrator.adapters.openshell.readyz import CONNECT_ATTEMPTS, ReadyzRefused, read_readyz

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        seen = []

        def hang_up() -> None:
            while len(seen) < CONNECT_ATTEMPTS:
                conn, _ = listener.accept()
                seen.append(conn.recv(1024))
                conn.close()

        t = threading.Thread(target=hang_up, daemon=True)
        t.start()
        with pytest.raises(ReadyzRefused):
            read_readyz(listener.getsockname()[1])
        t.join(10)
        assert len(seen) == CONNECT_ATTEMPTS and all(b"GET /readyz " in s for s in seen)


@pytest.mark.parametrize("status, body, error, problem", [
    (503, b'{"version":"0.0.116"}', "ReadyzBadStatus", "answered HTTP 503, not 200"),
    (200, b'not json', "ReadyzUnreadable", "the answer is not JSON"),
    (200, b'{"version":"unknown"}', "ReadyzUnreadable", "the answer carries no version"),
])
def test_an_answer_without_a_version_says_why(status, body, error, problem):
    from orchestrator.adapters.openshell import readyz

    server = _serve(status, body)
    try:
        with pytest.raises(getattr(readyz, error)) as info:
            readyz.read_readyz(server.server_address[1])
        assert info.value.problem == problem
    finally:
        server.shutdown()
        server.server_close()


def test_httpx_is_imported_only_when_a_probe_runs():
    import json
    import subprocess
    import sys

    code = ("import json, sys\n"
            "import orchestrator.adapters.openshell.drift, orchestrator.adapters.openshell.binary as b\n"
            "before = 'httpx' in sys.modules\n"
            f"version = b.served_version({_free_port()})\n"
            "print(json.dumps([before, version, 'httpx' in sys.modules]))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [False, None, True]
