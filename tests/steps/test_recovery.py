"""Gateway recovery and health with real processes (docs/reference/gateway-recovery.md).

A gateway is healthy only if, after the probes (and 0.5 s more), it is alive, `openshell status` is Connected,
its port accepts and its log has no fatal error. Polling is bounded by
NEMOCLAW_HEALTH_POLL_COUNT × NEMOCLAW_HEALTH_POLL_INTERVAL (set small by the `home` fixture).
"""

from __future__ import annotations

import pytest

from orchestrator.kernel.errors import Refusal, StepError
from orchestrator.adapters.openshell.marker import is_live_gateway, read_marker
from orchestrator.adapters.openshell.recovery import start_gateway
from orchestrator.kernel.paths import Paths

from tests.support.fakes import MIGRATION_ERR, REAL_PYTHON, write_exec, gateway_script
from tests.support.steputil import make_ctx, run_step, stderr, stdout


def _adopt_started(procs) -> None:
    marker = read_marker(Paths.from_env().gateway_state_dir)
    if marker is not None:
        procs.adopt(marker.pid)


def test_gateway_dying_on_migration_is_never_healthy_and_refuses(fake_openshell, home, procs):
    gateway_script(home / "bin" / "openshell-gateway", "0.0.37", mode="migrate-fail")
    fake_openshell.require_listener()
    ctx = make_ctx()
    run_step("preflight", ctx)  # same versions on disk: the preflight can't know
    with pytest.raises(Refusal) as info:
        run_step("sandbox_list", ctx)
    _adopt_started(procs)
    err, out = stderr(ctx), stdout(ctx)
    assert "✓ Docker-driver gateway is healthy" not in out + err
    assert "  Docker-driver gateway failed to start." in err.splitlines()
    assert "      │ is missing in the resolved migrations" in err.splitlines()  # the log tail, indented
    assert "  Cause: the gateway database was written by a newer OpenShell." in err.splitlines()
    assert info.value.reason == "gateway_migration"
    d = info.value.diagnosis
    assert d[1] == "  OpenShell gateway/schema mismatch was detected while backing up registered sandboxes."
    assert d[2] == "  Gateway start failed: the gateway database was written by a newer OpenShell."
    assert d[3] == (
        "  OpenShell output: Error: × execution error: migration error: migration 5 was previously applied but "
        "is missing in the resolved migrations"
    )
    assert "  No sandbox data was changed." in d
    assert fake_openshell.called("gateway select nemoclaw")
    assert "  Starting OpenShell Docker-driver gateway..." in out
    state = Paths.from_env().gateway_state_dir
    assert f"  Gateway log: {state / 'openshell-gateway.log'}" in out
    assert (state / "openshell-gateway.pid").exists()


def _gateway_leaving_a_listener(home, child_pid, *, linger: float = 0.0) -> None:
    """An `openshell-gateway` that starts a listener on its port (a child that outlives it,
    its pid in `child_pid`), waits `linger` seconds, then logs a migration error and exits 1."""
    write_exec(home / "bin" / "openshell-gateway", f"""#!/bin/bash
if [ "$1" = --version ]; then echo "openshell-gateway 0.0.37"; exit 0; fi
PORT=8080; while [ $# -gt 0 ]; do [ "$1" = --port ] && PORT=$2; shift; done
{REAL_PYTHON} -c "import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(16)
open(sys.argv[2], 'w').write(str(__import__('os').getpid()))
while True: s.accept()[0].close()" "$PORT" {child_pid} </dev/null >/dev/null 2>&1 &
for i in $(seq 100); do [ -s {child_pid} ] && break; sleep 0.05; done
sleep {linger}
printf '%s' '{MIGRATION_ERR}' >&2
exit 1
""")


@pytest.mark.parametrize("linger", [0.0, 0.1], ids=["exits-at-once", "exits-after-its-first-good-probe"])
def test_dead_gateway_is_unhealthy_even_if_its_port_still_accepts(fake_openshell, home, procs, tmp_path, linger):
    """The #4430 shape: something still answers on the port, but the gateway process itself
    exited. Lingering (found as a flaky test): every probe can pass in the moment between the
    gateway binding its port and it logging its fatal error and exiting; it must stay up, its log
    clean, a moment more to count as healthy."""
    child_pid = tmp_path / "listener.pid"
    _gateway_leaving_a_listener(home, child_pid, linger=linger)
    fake_openshell.require_listener()
    lines: list[str] = []
    try:
        result = start_gateway(state_dir=Paths.from_env().gateway_state_dir, say=lines.append, warn=lines.append)
    finally:
        if child_pid.exists():
            procs.adopt(int(child_pid.read_text()))
        _adopt_started(procs)
    assert not result.healthy
    assert result.cause == "the gateway database was written by a newer OpenShell"
    assert "  ✓ Docker-driver gateway is healthy" not in lines
    assert "  Docker-driver gateway failed to start." in lines


def test_recovery_starts_gateway_and_retries_list(fake_openshell, home, procs):
    gw = gateway_script(home / "bin" / "openshell-gateway", "0.0.37", mode="listen")
    fake_openshell.require_listener()
    ctx = make_ctx()
    try:
        run_step("sandbox_list", ctx)
    finally:
        _adopt_started(procs)
    out = stdout(ctx)
    assert "  ✓ Docker-driver gateway is healthy" in out.splitlines()
    assert ctx.facts["sandbox_list"].ready == ["alpha"] and ctx.facts["sandbox_list"].recovered is True
    lists = [c for c in fake_openshell.calls.read_text().splitlines() if c.startswith("sandbox list")]
    assert len(lists) == 2
    marker = read_marker(Paths.from_env().gateway_state_dir)
    assert marker is not None and marker.gateway_bin == str(gw.resolve())
    assert marker.endpoint == f"http://127.0.0.1:{fake_openshell.port}"
    assert is_live_gateway(marker.pid, marker.gateway_bin)  # /proc argv0 is the gateway path


def test_recovery_without_gateway_binary_fails_with_context(fake_openshell):
    fake_openshell.require_listener()
    ctx = make_ctx()
    with pytest.raises(StepError) as info:
        run_step("sandbox_list", ctx)
    assert info.value.exit_code == 1
    tail = stderr(ctx).splitlines()[-3:]
    assert tail == [
        "  Failed to query running sandboxes from OpenShell.",
        "  NemoClaw tried to recover its OpenShell gateway, but recovery did not complete.",
        "  Ensure OpenShell is running: openshell status",
    ]


def test_recovered_but_list_still_fails(fake_openshell, home, procs):
    gateway_script(home / "bin" / "openshell-gateway", "0.0.37", mode="listen")
    fake_openshell.require_listener()
    fake_openshell.set_list(err="Error:   × status: Unavailable, message: \"busy\"\n", rc=1)
    ctx = make_ctx()
    try:
        with pytest.raises(StepError):
            run_step("sandbox_list", ctx)
    finally:
        _adopt_started(procs)
    assert "  The NemoClaw OpenShell gateway was recovered, but the sandbox query still failed." in stderr(ctx).splitlines()


def test_recover_false_never_selects_or_starts(fake_openshell, home):
    gateway_script(home / "bin" / "openshell-gateway", "0.0.37", mode="listen")
    fake_openshell.require_listener()
    ctx = make_ctx()
    ctx.params = {"recover": False}
    with pytest.raises(StepError):
        run_step("sandbox_list", ctx)
    assert not fake_openshell.called("gateway select") and not fake_openshell.called("status")
    assert not Paths.from_env().gateway_state_dir.exists()
    assert stderr(ctx).splitlines() == [
        "  Failed to query running sandboxes from OpenShell.",
        "  Ensure OpenShell is running: openshell status",
    ]
