"""The stand-in CLI's own HTTP/1.1 client (nemoclaw_sim.rpc._http) against real sockets: it
must end a read at the content-length even if the server keeps the connection open, decode a
chunked body, and fail like http.client when nothing answers."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from nemoclaw_sim import rpc


def _server(reply: bytes, *, hold: float = 0.0) -> tuple[str, list[bytes]]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = srv.accept()
        got.append(conn.recv(65536))
        conn.sendall(reply)
        time.sleep(hold)  # a keep-alive server: the connection stays open
        conn.close()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{srv.getsockname()[1]}", got


def test_a_keep_alive_server_is_read_up_to_its_content_length():
    url, got = _server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nnope!", hold=10)
    t0 = time.monotonic()
    status, reason, headers, body = rpc._http(url, "POST", "/x", 5, b"{}", {"content-type": "application/json"})
    assert time.monotonic() - t0 < 5  # not the server's 10 s hold, nor the 5 s timeout
    assert (status, reason, headers, body) == (404, "Not Found", {"content-length": "5", "x-a": "1"}, b"nope!")
    assert got[0].startswith(b"POST /x HTTP/1.1\r\n") and got[0].endswith(b"\r\n\r\n{}")
    assert b"connection: close\r\n" in got[0] and b"content-length: 2\r\n" in got[0]


def test_a_chunked_body_is_decoded():
    url, _ = _server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n")
    assert rpc._http(url, "GET", "/", 5)[3] == b"Wikipedia"


def test_no_answer_and_no_listener_fail_as_transport_errors():
    url, _ = _server(b"")
    with pytest.raises(ConnectionResetError, match="Remote end closed connection without response"):
        rpc._http(url, "GET", "/", 5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(rpc.TransportError) as e:
        rpc.http_health_status(f"http://127.0.0.1:{port}", timeout=5)
    assert e.value.leaf == "Connection refused (os error 111)"
