"""The CLI's gateway registration files (docs/reference/openshell-cli-and-gateway.md,
"Registration files"), read and written as the real CLI does.

Layout under `$XDG_CONFIG_HOME/openshell` (default `~/.config/openshell`):
`active_gateway`, `gateways/<name>/metadata.json`, `gateways/<name>/last_sandbox`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# serde declaration order of openshell-bootstrap's GatewayMetadata; `None` fields are omitted.
_FIELD_ORDER = ("name", "gateway_endpoint", "is_remote", "gateway_port", "remote_host", "resolved_host", "auth_mode")


def config_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "openshell"


@dataclass
class GatewayMetadata:
    name: str
    gateway_endpoint: str
    is_remote: bool = False
    gateway_port: int = 0
    remote_host: str | None = None
    resolved_host: str | None = None
    auth_mode: str | None = None

    def to_json(self) -> str:
        data = {k: getattr(self, k) for k in _FIELD_ORDER if getattr(self, k) is not None}
        return json.dumps(data, indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GatewayMetadata":
        return cls(**{k: data[k] for k in _FIELD_ORDER if k in data})

    @property
    def type_label(self) -> str:
        if self.auth_mode == "cloudflare_jwt":
            return "cloud"
        return "remote" if self.is_remote else "local"

    @property
    def auth_label(self) -> str:
        if self.auth_mode:
            return self.auth_mode
        return "plaintext" if self.gateway_endpoint.startswith("http://") else "mtls"


class Registry:
    """The registration files of one user (one config dir)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Registry":
        return cls(config_dir(env))

    def _gw_dir(self, name: str) -> Path:
        return self.root / "gateways" / name

    def get(self, name: str) -> GatewayMetadata | None:
        path = self._gw_dir(name) / "metadata.json"
        try:
            return GatewayMetadata.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def list(self) -> list[GatewayMetadata]:
        gws = self.root / "gateways"
        if not gws.is_dir():
            return []
        found = [self.get(p.name) for p in sorted(gws.iterdir()) if p.is_dir()]
        return [g for g in found if g is not None]

    def save(self, meta: GatewayMetadata) -> None:
        d = self._gw_dir(meta.name)
        d.mkdir(parents=True, exist_ok=True)
        (d / "metadata.json").write_text(meta.to_json())

    def remove(self, name: str) -> bool:
        d = self._gw_dir(name)
        if not d.exists():
            return False
        shutil.rmtree(d)
        if self.active() == name:
            (self.root / "active_gateway").unlink(missing_ok=True)
        return True

    def active(self) -> str | None:
        try:
            name = (self.root / "active_gateway").read_text().strip()
        except OSError:
            return None
        return name or None

    def set_active(self, name: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "active_gateway").write_text(name)

    def last_sandbox(self, gateway: str) -> str | None:
        try:
            return (self._gw_dir(gateway) / "last_sandbox").read_text().strip() or None
        except OSError:
            return None

    def set_last_sandbox(self, gateway: str, sandbox: str) -> None:
        d = self._gw_dir(gateway)
        if d.is_dir():
            (d / "last_sandbox").write_text(sandbox)


def is_loopback(endpoint: str) -> bool:
    host = (urlparse(endpoint).hostname or "").lower()
    return host == "localhost" or host.startswith("127.") or host == "::1"
