"""`sandbox list` with named-gateway recovery (docs/reference/gateway-recovery.md).

Only connectivity failures are recoverable: select the `nemoclaw` gateway, and if it is still
down start `openshell-gateway` as a host process the way onboarding does. #4430 happened
because a gateway that died on a migration error was reported healthy: here a gateway counts
as healthy only if, *after* the probes, the process is alive, `openshell status` is Connected
to it, its port accepts and its log shows no fatal error. Messages go through `say`/`warn`
callbacks (the run's reporter), never print().
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from ...kernel.clock import utc_now_iso
from .. import deadlines
from .binary import resolve_gateway_bin
from .cli import (
    CaptureResult,
    capture_openshell,
    installed_openshell_version,
    require_openshell,
    strip_ansi,
)
from .rpc_errors import is_protobuf_mismatch
from .health import (
    DEFAULT_GATEWAY,
    endpoint_port,
    endpoint_url,
    HEALTHY_NAMED,
    RECOVERABLE_STATES,
    lifecycle_probe,
    probe_gateway,
    reported_gateway_name,
    status_connected,
)
from .marker import LOG_FILE_NAME, PID_FILE_NAME, RuntimeMarker, is_live_gateway, read_marker, write_marker

Say = Callable[[str], None]

_RECOVERABLE = re.compile(
    r"Connection refused|client error \(Connect\)|tcp connect error|No active gateway|No gateway configured"
    r"|Status:\s*Disconnected",
    re.I,
)
_MIGRATION = re.compile(r"is missing in the resolved migrations|has been modified", re.I)
_FATAL = re.compile(r"^\s*Error:|migration error|migration \d+ is partially applied|configuration error", re.I | re.M)
NEWER_DB_CAUSE = "the gateway database was written by a newer OpenShell"
LOG_TAIL_LINES = 20
SETTLE_SECONDS = 0.5  # how long a gateway we started must stay up, its log clean, after good probes


def gateway_port(env: Mapping[str, str] | None = None) -> int:
    """NEMOCLAW_GATEWAY_PORT, default 8080 (upstream core/ports.ts)."""
    env = os.environ if env is None else env
    raw = (env.get("NEMOCLAW_GATEWAY_PORT") or "").strip()
    return int(raw) if raw.isdigit() and 0 < int(raw) < 65536 else 8080


def _start_port(gateway: str, openshell: str, env: Mapping[str, str], marker: object) -> int:
    """Where to start the gateway: NEMOCLAW_GATEWAY_PORT when set; else the port the `gateway`
    registration points at (`openshell gateway info -g`, offline metadata), so the CLI finds
    the gateway we start; else the last marker's endpoint; else upstream's 8080."""
    if (env.get("NEMOCLAW_GATEWAY_PORT") or "").strip():
        return gateway_port(env)
    info = capture_openshell(["gateway", "info", "-g", gateway], ignore_error=True, timeout=deadlines.probe(),
                             binary=openshell, env=env).output
    for url in (endpoint_url(info), getattr(marker, "endpoint", None)):
        port = endpoint_port(url) if url else None
        if port:
            return port
    return gateway_port(env)


def is_recoverable_list_failure(result: CaptureResult) -> bool:
    return result.status != 0 and not is_protobuf_mismatch(result.output) and bool(_RECOVERABLE.search(result.clean))


def _normalize_log(text: str) -> str:
    """Undo miette's wrapping (`  │ ` continuation lines) so wrapped sqlx texts still match."""
    clean = strip_ansi(text).replace("│", " ")
    return re.sub(r"\s+", " ", clean)


def classify_gateway_failure(log_text: str) -> str | None:
    """Cause in words for a gateway that died, or None when the log doesn't say."""
    if _MIGRATION.search(_normalize_log(log_text)):
        return NEWER_DB_CAUSE
    return None


def fatal_error_text(log_text: str) -> str:
    """The fatal `Error: …` report of a gateway log (unwrapped), '' when there is none."""
    clean = strip_ansi(log_text)
    m = re.search(r"^\s*Error:.*", clean, re.M | re.S)
    return _normalize_log(m.group(0)).strip() if m else ""


@attrs.frozen
class GatewayStart:
    """Outcome of starting (or waiting for) the host-process gateway."""

    healthy: bool
    log_path: Path | None = None
    log_tail: tuple[str, ...] = ()
    cause: str | None = None
    error: str = ""
    pid: int | None = None


@attrs.frozen
class Recovery:
    recovered: bool
    attempted: bool
    start: GatewayStart | None = None


@attrs.frozen
class ListAttempt:
    """`result` is the last list run; `start` tells why recovery failed, if it started a gateway."""

    result: CaptureResult
    attempted: bool = False
    succeeded: bool = False
    start: GatewayStart | None = None


def _port_accepts(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _connected_to(gateway: str, binary: str, env: Mapping[str, str] | None) -> bool:
    probes = probe_gateway(gateway, binary=binary, env=env)
    status = strip_ansi(probes.status)
    connected = status_connected(status)
    return connected and reported_gateway_name(status) == gateway and probes.healthy


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _poll_settings(env: Mapping[str, str]) -> tuple[int, float]:
    try:
        count = max(1, int(env.get("NEMOCLAW_HEALTH_POLL_COUNT", "30")))
    except ValueError:
        count = 30
    try:
        interval = max(0.0, float(env.get("NEMOCLAW_HEALTH_POLL_INTERVAL", "2")))
    except ValueError:
        interval = 2.0
    return count, interval


def _stop(proc: subprocess.Popen) -> None:
    """End a gateway *we* started that never became healthy (its own process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass


def start_gateway(
    *,
    state_dir: Path,
    gateway: str = DEFAULT_GATEWAY,
    env: Mapping[str, str] | None = None,
    say: Say,
    warn: Say,
) -> GatewayStart:
    """Start `openshell-gateway` as onboarding does and wait until it is really healthy.

    Writes pid file, log and runtime.json marker in `state_dir`. A gateway that is still
    running but never healthy is stopped again (we started it); one that exited is reported
    with its log tail and the cause.
    """
    env = dict(os.environ if env is None else env)
    openshell = require_openshell(env)
    state_dir = Path(state_dir)
    count, interval = _poll_settings(env)
    marker = read_marker(state_dir)
    port = _start_port(gateway, openshell, env, marker)
    say("  [2/8] Starting OpenShell gateway")
    if marker is not None and is_live_gateway(marker.pid, marker.gateway_bin):
        say("  ✓ Reusing existing Docker-driver gateway")
        return _wait_existing(marker.pid, gateway, openshell, env, port, count, interval, warn)

    gateway_bin = resolve_gateway_bin(None, openshell, env)
    if not gateway_bin or not os.access(gateway_bin, os.X_OK):
        warn("  Docker-driver gateway failed to start.")
        warn(f"  openshell-gateway not found (looked for {gateway_bin or 'openshell-gateway'}).")
        return GatewayStart(healthy=False, error="openshell-gateway not found")

    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = state_dir / LOG_FILE_NAME
    offset = log_path.stat().st_size if log_path.exists() else 0
    health_port = _free_port()
    argv = [
        gateway_bin,
        "--port", str(port),
        "--health-port", str(health_port),  # so the preflight can ask the process its version
        "--drivers", "docker",
        "--disable-tls",
        "--db-url", f"sqlite:{state_dir / 'openshell.db'}",
    ]  # fmt: skip
    say("  Starting OpenShell Docker-driver gateway...")
    say(f"  Gateway log: {log_path}")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    (state_dir / PID_FILE_NAME).write_text(f"{proc.pid}\n")
    write_marker(
        state_dir,
        RuntimeMarker(
            pid=proc.pid,
            endpoint=f"http://127.0.0.1:{port}",
            gateway_bin=os.path.realpath(gateway_bin),
            openshell_version=installed_openshell_version(binary=openshell),
            docker_host=env.get("DOCKER_HOST") or None,
            created_at=utc_now_iso(),
            desired_env_hash=hashlib.sha256(json.dumps(argv).encode()).hexdigest(),
            health_port=health_port,
            args=tuple(argv[1:]),
        ),
    )
    for _ in range(count):
        if proc.poll() is not None:
            break
        ok = _connected_to(gateway, openshell, env) and _port_accepts(port)
        log_text = _read_from(log_path, offset)
        if ok and proc.poll() is None and not _FATAL.search(strip_ansi(log_text)):
            # All probes can pass in the moment between a failing gateway binding its port and
            # it logging its fatal error and exiting: it must stay up, its log clean, a while more.
            time.sleep(SETTLE_SECONDS)
            if proc.poll() is None and not _FATAL.search(strip_ansi(_read_from(log_path, offset))):
                say("  ✓ Docker-driver gateway is healthy")
                return GatewayStart(healthy=True, log_path=log_path, pid=proc.pid)
            continue  # it exited (the loop's first check ends it) or its log turned fatal
        time.sleep(interval)
    _stop(proc)
    return _failed(log_path, _read_from(log_path, offset), proc.pid, warn)


def _wait_existing(
    pid: int, gateway: str, openshell: str, env: Mapping[str, str], port: int, count: int, interval: float, warn: Say
) -> GatewayStart:
    for _ in range(count):
        if not is_live_gateway(pid, None):
            break
        if _connected_to(gateway, openshell, env) and _port_accepts(port) and is_live_gateway(pid, None):
            return GatewayStart(healthy=True, pid=pid)
        time.sleep(interval)
    warn("  Docker-driver gateway failed to start.")
    return GatewayStart(healthy=False, pid=pid, error="existing gateway process never became healthy")


def _failed(log_path: Path, log_text: str, pid: int, warn: Say) -> GatewayStart:
    tail = tuple(line for line in strip_ansi(log_text).splitlines() if line.strip())[-LOG_TAIL_LINES:]
    cause = classify_gateway_failure(log_text)
    warn("  Docker-driver gateway failed to start.")
    if tail:
        warn(f"  Last lines of {log_path}:")
        for line in tail:
            warn(f"    {line}")
    if cause:
        warn(f"  Cause: {cause}.")
    return GatewayStart(
        healthy=False, log_path=log_path, log_tail=tail, cause=cause, error=fatal_error_text(log_text), pid=pid
    )


def recover_named_gateway(
    *,
    state_dir: Path,
    gateway: str = DEFAULT_GATEWAY,
    recoverable_states: tuple[str, ...] = RECOVERABLE_STATES,
    env: Mapping[str, str] | None = None,
    say: Say,
    warn: Say,
) -> Recovery:
    """upstream recoverNamedGatewayRuntime: select, else start the host gateway, select again."""
    openshell = require_openshell(env)
    state = lifecycle_probe(gateway, binary=openshell, env=env)
    if state == HEALTHY_NAMED:
        return Recovery(recovered=True, attempted=False)
    if state not in recoverable_states:
        return Recovery(recovered=False, attempted=False)

    def select() -> bool:
        capture_openshell(["gateway", "select", gateway], ignore_error=True, timeout=deadlines.operation(), binary=openshell,
                          env=env)
        if lifecycle_probe(gateway, binary=openshell, env=env) == HEALTHY_NAMED:
            os.environ["OPENSHELL_GATEWAY"] = gateway
            return True
        return False

    if select():
        return Recovery(recovered=True, attempted=True)
    try:
        start = start_gateway(state_dir=state_dir, gateway=gateway, env=env, say=say, warn=warn)
    except Exception as exc:  # noqa: BLE001 - upstream swallows start errors; the list still fails
        warn(f"  Docker-driver gateway failed to start: {exc}")
        start = GatewayStart(healthy=False, error=str(exc))
    if not start.healthy:
        return Recovery(recovered=False, attempted=True, start=start)
    return Recovery(recovered=select(), attempted=True, start=start)


def capture_sandbox_list_with_recovery(
    args: list[str],
    *,
    state_dir: Path,
    gateway: str = DEFAULT_GATEWAY,
    env: Mapping[str, str] | None = None,
    say: Say,
    warn: Say,
    recover: bool = True,
) -> ListAttempt:
    """`openshell <args>` (stdout + stderr); on a connectivity failure recover and retry once.

    Each list has the probe bound (upstream has none: adapters/deadlines.py); one that hangs
    raises `OpenShellTimeout`, never recovery: a gateway that hangs is not down, and starting
    another one beside it would not make it answer.
    `recover=False` never selects or starts a gateway (read-only callers such as `--check`).
    """
    initial = capture_openshell(args, env=env)
    if not recover or not is_recoverable_list_failure(initial):
        return ListAttempt(initial)
    rec = recover_named_gateway(state_dir=state_dir, gateway=gateway, env=env, say=say, warn=warn)
    if not rec.recovered:
        return ListAttempt(initial, attempted=True, succeeded=False, start=rec.start)
    return ListAttempt(capture_openshell(args, env=env), attempted=True, succeeded=True, start=rec.start)


def list_failure_lines(attempt: ListAttempt) -> list[str]:
    """upstream printSandboxListFailureWithRecoveryContext (stderr)."""
    lines = ["  Failed to query running sandboxes from OpenShell."]
    if attempt.attempted:
        lines.append(
            "  The NemoClaw OpenShell gateway was recovered, but the sandbox query still failed."
            if attempt.succeeded
            else "  NemoClaw tried to recover its OpenShell gateway, but recovery did not complete."
        )
    lines.append("  Ensure OpenShell is running: openshell status")
    return lines
