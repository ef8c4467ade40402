"""gRPC `Health` against real grpcio servers built from NVIDIA's SDK (plaintext and mTLS), the
reply decoder against the SDK's own messages, and the guarantees that the CLI's start-up never
imports grpc and the probe never imports the SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import pytest

from orchestrator.adapters.openshell.grpc_health import decode_health, grpc_health
from orchestrator.adapters.openshell.registration import resolve_target

grpc = pytest.importorskip("grpc")  # a declared dependency; absent only in a broken install
from openshell._proto import openshell_pb2, openshell_pb2_grpc  # noqa: E402


class _Health(openshell_pb2_grpc.OpenShellServicer):
    def __init__(self, version: str) -> None:
        self.version = version

    def Health(self, request, context):  # noqa: N802
        return openshell_pb2.HealthResponse(status=openshell_pb2.SERVICE_STATUS_HEALTHY, version=self.version)


def _server(version: str, creds=None):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    openshell_pb2_grpc.add_OpenShellServicer_to_server(_Health(version), server)
    port = server.add_secure_port("127.0.0.1:0", creds) if creds else server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _register(tmp: Path, name: str, endpoint: str, auth_mode: str | None) -> Path:
    d = tmp / "cfg" / "openshell" / "gateways" / name
    d.mkdir(parents=True)
    meta = {"name": name, "gateway_endpoint": endpoint}
    if auth_mode:
        meta["auth_mode"] = auth_mode
    (d / "metadata.json").write_text(json.dumps(meta))
    (tmp / "cfg" / "openshell" / "active_gateway").write_text(name)
    return d


def _env(tmp: Path) -> dict[str, str]:
    return {"HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "cfg"), "OPENSHELL_SYSTEM_GATEWAY_DIR": str(tmp / "none")}


def test_plaintext_registration(tmp_path):
    server, port = _server("0.1.0-pre.3")
    try:
        _register(tmp_path, "nemoclaw", f"http://127.0.0.1:{port}", "plaintext")
        reply = grpc_health(resolve_target(_env(tmp_path)))
        assert (reply.version, reply.error) == ("0.1.0-pre.3", None)
    finally:
        server.stop(0)
    down = grpc_health(resolve_target(_env(tmp_path)), timeout=2)
    assert down.version is None and "UNAVAILABLE" in down.error


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server and a client certificate (P-256 keys: quick to make, and what TLS 1.3 prefers)."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=test-ca", cwd=d)
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
                 "-subj", f"/CN={who}", cwd=d)
        (d / f"{who}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{who}.crt", "-days", "2", "-extfile", f"{who}.ext", cwd=d)
    return d


def test_mtls_registration_presents_the_client_certificate(tmp_path, pki):
    creds = grpc.ssl_server_credentials([((pki / "server.key").read_bytes(), (pki / "server.crt").read_bytes())],
                                        root_certificates=(pki / "ca.crt").read_bytes(), require_client_auth=True)
    server, port = _server("0.0.116", creds)
    try:
        d = _register(tmp_path, "secure", f"https://127.0.0.1:{port}", None)  # auth_mode absent = mTLS
        (d / "mtls").mkdir()
        for src, dst in (("ca.crt", "ca.crt"), ("client.crt", "tls.crt"), ("client.key", "tls.key")):
            (d / "mtls" / dst).write_bytes((pki / src).read_bytes())
        reply = grpc_health(resolve_target(_env(tmp_path)))
        assert (reply.version, reply.error) == ("0.0.116", None)
        (d / "mtls" / "tls.crt").unlink()  # no client identity: the gateway rejects the handshake
        refused = grpc_health(resolve_target(_env(tmp_path)), timeout=2)
        assert refused.version is None and refused.error
    finally:
        server.stop(0)


def test_cli_start_up_does_not_import_grpc():
    code = ("import sys\nsys.argv = ['nemoclaw', '--help']\nfrom orchestrator.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'openshell'))\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("fields", [
    {"status": 1, "version": "0.0.116"},
    {"version": "0.1.5"},
    {"status": 2},
    {},
    {"status": 1, "version": "0.1.0-pre.3+" + "x" * 300},  # a length over one varint byte
])
def test_the_reply_decoder_reads_what_the_sdk_serializes(fields):
    raw = openshell_pb2.HealthResponse(**fields).SerializeToString()
    assert decode_health(raw) == (fields.get("status") or None, fields.get("version") or None)


def test_the_reply_decoder_skips_unknown_fields_and_keeps_the_last_value():
    unknown = b"\x18\x07" + b"\x21" + b"\0" * 8 + b"\x2d" + b"\0" * 4 + b"\x32\x03abc"  # fields 3-6, every wire type
    raw = b"\x12\x050.0.1" + unknown + openshell_pb2.HealthResponse(status=1, version="0.0.116").SerializeToString()
    assert decode_health(raw) == (1, "0.0.116")


@pytest.mark.parametrize("raw, why", [
    (b"\x12\x09short", "runs past the end"),
    (b"\x12", "truncated"),
    (b"\x08" + b"\xff" * 11, "overlong"),
    (b"\x12\x02\xff\xfe", "utf-8"),
    (b"\x0b", "wire type 3"),
    (b"\x10\x01", "field 2 has wire type 0"),
    (b"\x0a\x00", "field 1 has wire type 2"),
    (b"\x00\x00", "field number 0"),
    (b"\x21\0\0", "runs past the end"),
])
def test_a_malformed_reply_is_an_error_never_a_version(raw, why):
    with pytest.raises(ValueError, match=why):
        decode_health(raw)


def test_a_reply_that_is_not_a_health_response_gives_no_version(tmp_path):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.method_handlers_generic_handler("openshell.v1.OpenShell", {
        "Health": grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"\x12\x02\xff\xfe",
                                                      request_deserializer=lambda b: b,
                                                      response_serializer=lambda b: b)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        _register(tmp_path, "nemoclaw", f"http://127.0.0.1:{port}", "plaintext")
        reply = grpc_health(resolve_target(_env(tmp_path)))
        assert reply.version is None and "unreadable Health reply" in reply.error
    finally:
        server.stop(0)


def test_the_probe_imports_grpc_alone_not_the_sdk(tmp_path):
    # The SDK pulls protobuf, httpx and rich: about 0.4 s of every guarded run's preflight.
    server, port = _server("0.0.116")
    try:
        _register(tmp_path, "nemoclaw", f"http://127.0.0.1:{port}", "plaintext")
        code = ("import json, sys\n"
                "from orchestrator.adapters.openshell.grpc_health import grpc_health\n"
                "from orchestrator.adapters.openshell.registration import resolve_target\n"
                f"reply = grpc_health(resolve_target({_env(tmp_path)!r}))\n"
                "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'openshell', 'google', 'httpx', 'rich'})\n"
                "print(json.dumps([reply.version, reply.error, heavy]))\n")
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout) == ["0.0.116", None, []]
    finally:
        server.stop(0)
