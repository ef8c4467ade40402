"""Resolving the gateway the CLI talks to, from the same files and variables (pure, in process)."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.adapters.openshell.registration import GatewayTarget, TlsFiles, resolve_target


def _register(root: Path, name: str, endpoint: str, auth_mode: str | None = "plaintext") -> Path:
    d = root / "gateways" / name
    d.mkdir(parents=True)
    meta = {"name": name, "gateway_endpoint": endpoint, "is_remote": False, "gateway_port": 0}
    if auth_mode:
        meta["auth_mode"] = auth_mode
    (d / "metadata.json").write_text(json.dumps(meta))
    return d


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "cfg"),
            "OPENSHELL_SYSTEM_GATEWAY_DIR": str(tmp / "system"), **extra}


def test_active_gateway_then_env_name_then_endpoint_override(tmp_path):
    root = tmp_path / "cfg" / "openshell"
    _register(root, "nemoclaw", "http://127.0.0.1:17670")
    _register(root, "other", "http://127.0.0.1:9000")
    (root / "active_gateway").write_text("nemoclaw\n")
    env = _env(tmp_path)
    assert resolve_target(env) == GatewayTarget("nemoclaw", "http://127.0.0.1:17670", None, "plaintext")
    assert resolve_target({**env, "OPENSHELL_GATEWAY": "other"}).url == "http://127.0.0.1:9000"
    assert resolve_target(env, gateway="other").name == "other"
    t = resolve_target({**env, "OPENSHELL_GATEWAY_ENDPOINT": "http://127.0.0.1:9000"})
    assert (t.name, t.url, t.authority) == ("other", "http://127.0.0.1:9000", "127.0.0.1:9000")
    t = resolve_target({**env, "OPENSHELL_GATEWAY_ENDPOINT": "http://127.0.0.1:1234"})
    assert (t.name, t.url, t.tls) == ("http://127.0.0.1:1234", "http://127.0.0.1:1234", None)


def test_no_active_gateway_or_unknown_name_is_none(tmp_path):
    env = _env(tmp_path)
    assert resolve_target(env) is None
    assert resolve_target({**env, "OPENSHELL_GATEWAY": "ghost"}) is None


def test_system_registry_is_read_when_the_user_has_none(tmp_path):
    _register(tmp_path / "etc", "local-vm", "http://127.0.0.1:8444")  # etc/gateways/local-vm/metadata.json
    t = resolve_target(_env(tmp_path, OPENSHELL_GATEWAY="local-vm", OPENSHELL_SYSTEM_GATEWAY_DIR=str(tmp_path / "etc" / "gateways")))
    assert t is not None and t.url == "http://127.0.0.1:8444"


def test_https_registration_uses_its_mtls_files(tmp_path):
    root = tmp_path / "cfg" / "openshell"
    d = _register(root, "secure", "https://gw.example:8443", auth_mode=None)
    (d / "mtls").mkdir()
    for f in ("ca.crt", "tls.crt", "tls.key"):
        (d / "mtls" / f).write_text("x")
    t = resolve_target(_env(tmp_path, OPENSHELL_GATEWAY="secure"))
    assert t.tls == TlsFiles(d / "mtls" / "ca.crt", d / "mtls" / "tls.crt", d / "mtls" / "tls.key")
    assert t.authority == "gw.example:8443" and t.auth_mode is None
    (d / "mtls" / "tls.key").unlink()  # a cert without its key is no client identity: CA only
    assert resolve_target(_env(tmp_path, OPENSHELL_GATEWAY="secure")).tls == TlsFiles(d / "mtls" / "ca.crt")


def test_loopback_https_falls_back_to_the_default_mtls_dir_and_default_port(tmp_path):
    root = tmp_path / "cfg" / "openshell"
    _register(root, "nemoclaw", "https://127.0.0.1", auth_mode=None)
    (root / "gateways" / "openshell" / "mtls").mkdir(parents=True)
    (root / "gateways" / "openshell" / "mtls" / "ca.crt").write_text("x")
    t = resolve_target(_env(tmp_path, OPENSHELL_GATEWAY="nemoclaw"))
    assert t.tls == TlsFiles(root / "gateways" / "openshell" / "mtls" / "ca.crt") and t.authority == "127.0.0.1:443"
