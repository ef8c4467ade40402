"""End to end against the OpenShell stand-in (sim/nemoclaw_sim): real `openshell` / `openshell-gateway`
programs at chosen versions, a real gateway process with SQLite migrations, a real Docker engine.

The gateway is started by the adapters' own `start_gateway` (as onboarding/recovery does), so
the marker, pid file and log are the ones the preflight reads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from click.testing import CliRunner

from orchestrator.cli.gateway import gateway_group
from orchestrator.kernel.errors import Refusal
from orchestrator.adapters.openshell.marker import read_marker
from orchestrator.adapters.openshell.recovery import start_gateway
from orchestrator.kernel.paths import Paths
from nemoclaw_sim import install as sim_install

from tests.support.steputil import make_ctx, run_step

pytestmark = pytest.mark.docker


@pytest.fixture
def sim_programs(home, docker_client, monkeypatch, unique):
    """The stand-in's programs only: CLI and gateway launchers in ~/bin, gateway `nemoclaw` on a free
    port, started by the adapters' own start_gateway. (The `sim` fixture is a whole deployed host.)"""
    from tests.support.fakes import free_port

    port = free_port()
    monkeypatch.setenv("NEMOCLAW_GATEWAY_PORT", str(port))
    monkeypatch.setenv("NEMOCLAW_HEALTH_POLL_COUNT", "40")
    monkeypatch.setenv("NEMOCLAW_HEALTH_POLL_INTERVAL", "0.25")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    started: list[int] = []

    class Sim:
        bin = home / "bin"
        state = Paths.from_env().gateway_state_dir

        def install(self, cli: str | None = None, gateway: str | None = None) -> None:
            sim_install.install(self.bin, cli, gateway)

        def register(self) -> None:
            subprocess.run([str(self.bin / "openshell"), "gateway", "add", f"http://127.0.0.1:{port}", "--name", "nemoclaw"],
                           check=True, capture_output=True)  # fmt: skip

        def start(self):
            lines: list[str] = []
            res = start_gateway(state_dir=self.state, say=lines.append, warn=lines.append)
            if res.pid:
                started.append(res.pid)
            return res, lines

        def stop(self) -> None:
            m = read_marker(self.state)
            if m is not None:
                _kill(m.pid, signal.SIGTERM)

    s = Sim()
    s.port = port
    yield s
    for pid in started:
        _kill(pid, signal.SIGKILL)


def _kill(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:
        return
    for _ in range(100):  # bounded: wait for it to go
        try:
            os.kill(pid, 0)
        except OSError:
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        import time

        time.sleep(0.05)


def test_swapped_gateway_binary_is_host_process_drift(sim_programs):
    sim_programs.install(cli="0.0.44", gateway="0.0.43")
    sim_programs.register()
    res, lines = sim_programs.start()
    assert res.healthy, lines
    ctx = make_ctx()
    with pytest.raises(Refusal) as info:
        run_step("preflight", ctx)
    assert info.value.reason == "host_process_drift"
    gw = os.path.realpath(sim_programs.bin / "openshell-gateway")
    assert f"  Running gateway binary: {gw} (0.0.43)" in info.value.diagnosis
    assert "  Installed OpenShell: 0.0.44" in info.value.diagnosis


def test_old_gateway_process_with_new_binary_on_disk_is_served_version_drift(sim_programs):
    sim_programs.install(cli="0.0.44", gateway="0.0.43")
    sim_programs.register()
    res, lines = sim_programs.start()
    assert res.healthy, lines
    sim_programs.install(gateway="0.0.44")  # in-place upgrade of the file; the process keeps running 0.0.43
    ctx = make_ctx()
    with pytest.raises(Refusal) as info:
        run_step("preflight", ctx)
    assert info.value.reason == "served_version_drift"
    assert f"  Running gateway version: http://127.0.0.1:{sim_programs.port} (0.0.43)" in info.value.diagnosis

    result = CliRunner().invoke(gateway_group, ["check", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "served_version_drift"
    assert doc["gateway_binary"]["version"] == "0.0.44" and doc["served"]["version"] == "0.0.43"
    assert doc["served"]["source"] == "grpc"  # gRPC Health comes first
    assert doc["marker"]["alive"] is True


def test_matching_versions_pass_and_list_works(sim_programs):
    sim_programs.install(cli="0.0.44", gateway="0.0.44")
    sim_programs.register()
    res, lines = sim_programs.start()
    assert res.healthy, lines
    ctx = make_ctx()
    run_step("preflight", ctx)
    run_step("sandbox_list", ctx)
    assert ctx.facts["sandbox_list"].live == [] and ctx.facts["sandbox_list"].format == "json"
    assert CliRunner().invoke(gateway_group, ["check", "--json"]).exit_code == 0


def test_downgraded_gateway_crashing_on_migration_refuses_with_cause(sim_programs):
    sim_programs.install(cli="0.0.44", gateway="0.0.44")
    sim_programs.register()
    res, lines = sim_programs.start()  # migrates the DB to version 5
    assert res.healthy, lines
    sim_programs.stop()
    sim_programs.install(cli="0.0.43", gateway="0.0.43")  # a downgrade: same versions, so no preflight drift
    ctx = make_ctx()
    run_step("preflight", ctx)
    with pytest.raises(Refusal) as info:
        run_step("sandbox_list", ctx)
    err = ctx.out.stderr.getvalue()
    assert "✓ Docker-driver gateway is healthy" not in ctx.out.stdout.getvalue().split("Starting OpenShell Docker-driver")[-1]
    assert "  Docker-driver gateway failed to start." in err.splitlines()
    assert "  Cause: the gateway database was written by a newer OpenShell." in err.splitlines()
    assert info.value.reason == "gateway_migration"
    assert "  Gateway start failed: the gateway database was written by a newer OpenShell." in info.value.diagnosis
    assert any("migration 5 was previously applied" in line for line in info.value.diagnosis)
