"""Which `openshell-gateway` runs, and which version it is / serves
(docs/reference/gateway-preflight.md, "Host-process gateway").

Two distinct questions: the *binary* version (`<bin> --version`, upstream's host-process
check) and the *served* version (`/readyz` of the live process). They differ exactly when a
gateway process kept running an old build after the file on disk was replaced, the gap
upstream documents as invisible; asking the process closes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .. import deadlines
from .cli import parse_version, run_bounded
from .marker import RuntimeMarker, is_live_gateway

GATEWAY_BIN_NAME = "openshell-gateway"


def resolve_gateway_bin(
    marker: RuntimeMarker | None,
    openshell_bin: str | None,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """upstream resolveHostProcessGatewayBin: live marker → env override → well-known places."""
    env = os.environ if env is None else env
    if marker is not None and marker.gateway_bin and is_live_gateway(marker.pid, marker.gateway_bin):
        return marker.gateway_bin
    override = (env.get("NEMOCLAW_OPENSHELL_GATEWAY_BIN") or "").strip()
    if override:
        return os.path.abspath(override)
    home = env.get("HOME") or os.path.expanduser("~")
    candidates = []
    if openshell_bin:
        candidates.append(Path(openshell_bin).parent / GATEWAY_BIN_NAME)
    candidates += [
        Path(home) / ".local/bin" / GATEWAY_BIN_NAME,
        Path("/usr/local/bin") / GATEWAY_BIN_NAME,
        Path("/usr/bin") / GATEWAY_BIN_NAME,
    ]
    for cand in candidates:
        if cand.exists():
            return str(cand)
    return None


def gateway_bin_version(gateway_bin: str | None, timeout: float | None = None) -> str | None:
    """`<bin> --version` (stdout + stderr); any spawn failure or timeout (the probe bound,
    adapters/deadlines.py; its process group killed) → None."""
    if not gateway_bin:
        return None
    try:
        status, out, err = run_bounded([gateway_bin, "--version"],
                                       timeout=deadlines.probe() if timeout is None else timeout)
    except (OSError, ValueError):
        return None
    if status is None:
        return None
    return parse_version((out + err).decode("utf-8", "replace"))


def served_version(port: int | None, timeout: float | None = None) -> str | None:
    """The version the running gateway reports on its health listener's /readyz, or None
    whatever kept it from answering (adapters/openshell/readyz.py tells which)."""
    if not port:
        return None
    from .readyz import ReadyzError, read_readyz

    try:
        return read_readyz(port, timeout)
    except ReadyzError:
        return None
