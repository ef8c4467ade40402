"""The host-process gateway's runtime marker and live-pid check
(docs/reference/gateway-preflight.md, "Host-process gateway").

Onboarding writes `<state dir>/runtime.json` when it launches `openshell-gateway`. The marker
is only trusted while its pid is still a gateway: a recycled pid or a stale file must never
make us report a version the gateway no longer runs. A marker that is not
exactly upstream's shape is treated as absent, never as a crash.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import attrs

MARKER_NAME = "runtime.json"
PID_FILE_NAME = "openshell-gateway.pid"
LOG_FILE_NAME = "openshell-gateway.log"
GATEWAY_BASENAMES = frozenset({"openshell-gateway", "openclaw-gateway"})
COMPAT_CONTAINER_BIN = "/opt/nemoclaw/openshell-gateway"

_HEALTH_ARG = re.compile(r"^--health-port(?:=(\d+))?$")


@attrs.frozen
class RuntimeMarker:
    """runtime.json as onboarding writes it, plus the optional health-port hints we accept."""

    pid: int
    endpoint: str
    gateway_bin: str | None
    openshell_version: str | None = None
    docker_host: str | None = None
    created_at: str | None = None
    desired_env_hash: str | None = None
    platform: str | None = None
    arch: str | None = None
    health_port: int | None = None
    env: dict[str, str] = attrs.field(factory=dict)
    args: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "version": 1,
            "pid": self.pid,
            "driver": "docker",
            "platform": self.platform or "linux",
            "arch": self.arch or "x64",
            "endpoint": self.endpoint,
            "desiredEnvHash": self.desired_env_hash or "",
            "gatewayBin": self.gateway_bin,
            "openshellVersion": self.openshell_version,
            "dockerHost": self.docker_host,
            "createdAt": self.created_at or "",
        }
        if self.health_port is not None:
            doc["healthPort"] = self.health_port
        if self.env:
            doc["env"] = dict(self.env)
        if self.args:
            doc["args"] = list(self.args)
        return doc


def _opt_str(doc: dict[str, Any], key: str) -> str | None:
    v = doc.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise ValueError(key)
    return v


def parse_marker(text: str) -> RuntimeMarker | None:
    """Strict parse; anything not upstream's shape (or not ours to read) → None."""
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        return None
    if not isinstance(doc, dict) or doc.get("version") != 1 or doc.get("driver") != "docker":
        return None
    pid = doc.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(doc.get("endpoint"), str):
        return None
    try:
        hp = doc.get("healthPort")
        if hp is not None and (not isinstance(hp, int) or isinstance(hp, bool) or not 0 < hp < 65536):
            raise ValueError("healthPort")
        env = doc.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ValueError("env")
        args = doc.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ValueError("args")
        return RuntimeMarker(
            pid=pid,
            endpoint=doc["endpoint"],
            gateway_bin=_opt_str(doc, "gatewayBin"),
            openshell_version=_opt_str(doc, "openshellVersion"),
            docker_host=_opt_str(doc, "dockerHost"),
            created_at=_opt_str(doc, "createdAt"),
            desired_env_hash=_opt_str(doc, "desiredEnvHash"),
            platform=_opt_str(doc, "platform"),
            arch=_opt_str(doc, "arch"),
            health_port=hp,
            env=dict(env),
            args=tuple(args),
        )
    except ValueError:
        return None


def read_marker(state_dir: Path) -> RuntimeMarker | None:
    try:
        text = (Path(state_dir) / MARKER_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return parse_marker(text)


def write_marker(state_dir: Path, marker: RuntimeMarker) -> Path:
    """Write the marker 0600 in a 0700 dir, atomically (a torn marker would read as absent)."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / MARKER_NAME
    tmp = state_dir / f".{MARKER_NAME}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(marker.to_json(), fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def pid_alive(pid: int) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except (ProcessLookupError, OverflowError, OSError):
        return False
    return True


def process_argv(pid: int) -> list[str]:
    """argv of `pid` from /proc (or `ps` where there is no /proc); [] when unknown."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    except OSError:
        pass
    try:
        out = subprocess.run(["ps", "-p", str(pid), "-o", "args="], capture_output=True, text=True, timeout=2)
        return out.stdout.split()
    except (OSError, subprocess.SubprocessError):
        return []


def process_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.decode("utf-8", "replace").partition("=")
        if sep:
            env[k] = v
    return env


def cmdline_matches(argv: list[str], gateway_bin: str | None) -> bool:
    """upstream hostGatewayCmdlineMatches: argv0 names the gateway; mentions elsewhere don't count."""
    tokens = " ".join(argv).split()
    if not tokens:
        return False
    argv0 = tokens[0]
    base = os.path.basename(argv0)
    if base in GATEWAY_BASENAMES:
        return True
    if gateway_bin and os.path.realpath(argv0) == os.path.realpath(gateway_bin):
        return True
    return base == "docker" and COMPAT_CONTAINER_BIN in tokens


def is_live_gateway(pid: int, gateway_bin: str | None) -> bool:
    """The pid exists and its argv0 is a gateway: what makes a marker trustworthy."""
    if not pid_alive(pid):
        return False
    argv = process_argv(pid)
    return bool(argv) and cmdline_matches(argv, gateway_bin)


def _port(value: str | None) -> int | None:
    if value and value.strip().isdigit():
        port = int(value.strip())
        if 0 < port < 65536:
            return port
    return None


def health_port_from_args(args: list[str] | tuple[str, ...]) -> int | None:
    """`--health-port N` / `--health-port=N` in a gateway argv (0 = off → None)."""
    for i, a in enumerate(args):
        m = _HEALTH_ARG.match(a)
        if m:
            return _port(m.group(1) if m.group(1) is not None else (args[i + 1] if i + 1 < len(args) else None))
    return None


def find_health_port(marker: RuntimeMarker | None) -> int | None:
    """Where the live gateway serves /readyz, if anywhere.

    The real marker has no such field, so look, in order, at the marker's `healthPort`, its
    recorded `args`/`env`, then the live process's own argv and environment.
    """
    if marker is None:
        return None
    if marker.health_port:
        return marker.health_port
    port = health_port_from_args(marker.args) or _port(marker.env.get("OPENSHELL_HEALTH_PORT"))
    if port:
        return port
    if not is_live_gateway(marker.pid, marker.gateway_bin):
        return None
    return health_port_from_args(process_argv(marker.pid)) or _port(
        process_environ(marker.pid).get("OPENSHELL_HEALTH_PORT")
    )
