"""Which gateway the `openshell` CLI talks to, resolved from the same files and variables it reads.

The served-version probe must ask the gateway the CLI's sandbox RPCs will reach, so it resolves
the registration exactly as the CLI does (docs/reference/openshell-versions.md, "Gateway
registration"): `OPENSHELL_GATEWAY_ENDPOINT` wins; else the name from `-g`/`OPENSHELL_GATEWAY`,
else `$XDG_CONFIG_HOME/openshell/active_gateway`; the endpoint and auth mode come from
`gateways/<name>/metadata.json` (the user's config dir first, then the read-only system
registry `/etc/openshell/gateways` or `$OPENSHELL_SYSTEM_GATEWAY_DIR`). An `https` endpoint
uses the client certificates in `gateways/<name>/mtls/` (loopback endpoints fall back to the
directory of the default name `openshell`).
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import attrs

DEFAULT_SYSTEM_DIR = "/etc/openshell/gateways"


@attrs.frozen
class TlsFiles:
    """Client TLS material for an https gateway; a missing file is None (CA-only, system roots)."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


@attrs.frozen
class GatewayTarget:
    """Where the CLI's RPCs go: the registration name (or the URL), the URL, and its TLS files."""

    name: str
    url: str
    tls: TlsFiles | None  # None: plaintext
    auth_mode: str | None = None

    @property
    def authority(self) -> str:
        """`host:port` for a gRPC channel (default port 80/443 by scheme, as the SDK does)."""
        parts = urlsplit(self.url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        shown = f"[{host}]" if ":" in host else host
        return f"{shown}:{port}"


def config_root(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "openshell"


def _system_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("OPENSHELL_SYSTEM_GATEWAY_DIR") or DEFAULT_SYSTEM_DIR)


def _metadata(env: Mapping[str, str], name: str) -> tuple[dict, Path] | None:
    """(metadata, its gateway directory) from the user registry, else the system one."""
    for gateways in (config_root(env) / "gateways", _system_dir(env)):
        path = gateways / name / "metadata.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("gateway_endpoint"), str):
            return doc, path.parent
    return None


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_files(url: str, gateway_dir: Path | None, env: Mapping[str, str]) -> TlsFiles | None:
    if urlsplit(url).scheme != "https":
        return None
    dirs = [gateway_dir / "mtls"] if gateway_dir is not None else []
    if _is_loopback(url):
        dirs.append(config_root(env) / "gateways" / "openshell" / "mtls")
    for d in dirs:
        found = {n: (d / f) if (d / f).is_file() else None for n, f in (("ca", "ca.crt"), ("cert", "tls.crt"), ("key", "tls.key"))}
        if any(found.values()):
            if (found["cert"] is None) != (found["key"] is None):
                found["cert"] = found["key"] = None  # a lone cert or key is no client identity
            return TlsFiles(**found)
    return TlsFiles()


def _registered_names(env: Mapping[str, str]) -> list[str]:
    root = config_root(env) / "gateways"
    try:
        return sorted(p.name for p in root.iterdir() if (p / "metadata.json").is_file())
    except OSError:
        return []


def resolve_target(env: Mapping[str, str] | None = None, gateway: str | None = None) -> GatewayTarget | None:
    """The gateway `openshell` (run with `-g gateway`, or none) would call, or None when it has none."""
    env = os.environ if env is None else env
    name = gateway or (env.get("OPENSHELL_GATEWAY") or "").strip() or None
    endpoint = (env.get("OPENSHELL_GATEWAY_ENDPOINT") or "").strip()
    if endpoint:
        found = _metadata(env, name) if name else None
        if found is None and name is None:
            for candidate in _registered_names(env):
                meta = _metadata(env, candidate)
                if meta and meta[0].get("gateway_endpoint") == endpoint:
                    name, found = candidate, meta
                    break
        gateway_dir = found[1] if found else None
        return GatewayTarget(name or endpoint, endpoint, _tls_files(endpoint, gateway_dir, env),
                             found[0].get("auth_mode") if found else None)
    if name is None:
        try:
            name = (config_root(env) / "active_gateway").read_text(encoding="utf-8").strip() or None
        except OSError:
            name = None
    if name is None:
        return None
    found = _metadata(env, name)
    if found is None:
        return None
    meta, gateway_dir = found
    url = meta["gateway_endpoint"]
    return GatewayTarget(name, url, _tls_files(url, gateway_dir, env), meta.get("auth_mode"))
