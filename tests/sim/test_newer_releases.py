"""The stand-in's 0.0.85-0.0.116 and 0.1.x personalities as programs: migrations 006-010, the
0.1.6 authentication-required start and its opt-out, real gRPC Health/GetGatewayInfo on the main
port, live `gateway info`, and the Docker layouts of each release."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from nemoclaw_sim import db
from nemoclaw_sim.gateway import AUTH_REQUIRED
from nemoclaw_sim.install import install

from tests.support.sim_helpers import env_for, free_port, listening, run, strip, wait_for

pytestmark = pytest.mark.docker

grpc = pytest.importorskip("grpc")  # a declared dependency
from openshell import SandboxClient  # noqa: E402
from openshell._proto import openshell_pb2  # noqa: E402


@pytest.fixture
def host(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    return home, home / ".local" / "bin", env_for(home)


@pytest.mark.parametrize("version, applied, missing", [
    ("0.0.116", [1, 4, 5, 6, 7, 8, 9], 7),  # a 0.0.x gateway on a database a 0.1.x one has opened
    ("0.1.5", [1, 4, 5, 6, 7, 8, 9, 10], 10),  # 010 arrives with 0.1.9
])
def test_older_gateway_on_newer_db(host, version, applied, missing):
    home, bin_dir, env = host
    install(bin_dir, None, version)
    dbfile = home / "openshell.db"
    conn = db.connect(dbfile)
    db.migrate(conn, db.migrations_for(applied, legacy=False))
    conn.close()
    before = dbfile.read_bytes()
    config = home / "gateway.toml"
    config.write_text("[openshell]\nversion = 2\n")
    r = run([str(bin_dir / "openshell-gateway"), "--disable-tls", "--db-url", f"sqlite:{dbfile}",
             "--config", str(config)], env)
    assert r.returncode == 1
    assert r.stderr == (f"Error:   × execution error: migration error: migration {missing} was previously applied but\n"
                        "  │ is missing in the resolved migrations\n")
    assert dbfile.read_bytes() == before


def _serve(bin_dir: Path, env: dict[str, str], home: Path, *extra: str):
    port = free_port()
    argv = [str(bin_dir / "openshell-gateway"), "--port", str(port), "--disable-tls", "--drivers", "docker",
            "--db-url", f"sqlite:{home / 'state' / 'openshell.db'}", *extra]
    return port, subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_0_1_6_refuses_to_start_without_authentication_unless_opted_out(host, docker_client):
    home, bin_dir, env = host
    install(bin_dir, None, "0.1.6")
    port, proc = _serve(bin_dir, env, home)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and not listening(port)
    assert err.startswith(f"Error:   × {AUTH_REQUIRED[:60]}")
    assert "allow_unauthenticated_users = true under [openshell.gateway.auth]" in " ".join(
        line.replace("│", "").strip() for line in err.splitlines())

    config = home / "gateway.toml"
    config.write_text("[openshell]\nversion = 2\n\n[openshell.gateway.auth]\nallow_unauthenticated_users = true\n")
    port, proc = _serve(bin_dir, env, home, "--config", str(config))
    try:
        assert wait_for(lambda: listening(port), 30)
        with SandboxClient(f"127.0.0.1:{port}", timeout=5) as client:
            assert client.health().version == "0.1.6"
        conn = sqlite3.connect(home / "state" / "openshell.db")
        assert [r[0] for r in conn.execute("SELECT version FROM _sqlx_migrations ORDER BY version")] == [1, 4, 5, 6, 7, 8, 9]
        conn.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


@pytest.mark.parametrize("version, has_info", [("0.0.44", False), ("0.0.85", True), ("0.1.5", True)])
def test_grpc_health_and_gateway_info_on_the_main_port(host, docker_client, version, has_info):
    home, bin_dir, env = host
    install(bin_dir, None, version)
    port, proc = _serve(bin_dir, env, home)
    try:
        assert wait_for(lambda: listening(port), 30)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        health = channel.unary_unary("/openshell.v1.OpenShell/Health",
                                     request_serializer=openshell_pb2.HealthRequest.SerializeToString,
                                     response_deserializer=openshell_pb2.HealthResponse.FromString)
        reply = health(openshell_pb2.HealthRequest(), timeout=5)
        assert (reply.status, reply.version) == (openshell_pb2.SERVICE_STATUS_HEALTHY, version)
        info = channel.unary_unary("/openshell.v1.OpenShell/GetGatewayInfo",
                                   request_serializer=openshell_pb2.GetGatewayInfoRequest.SerializeToString,
                                   response_deserializer=openshell_pb2.GetGatewayInfoResponse.FromString)
        if has_info:
            got = info(openshell_pb2.GetGatewayInfoRequest(), timeout=5)
            assert got.gateway_version == version and [d.name for d in got.compute_drivers] == ["docker"]
            assert got.compute_drivers[0].capabilities.driver_version == docker_client.version()["Version"]
        else:
            with pytest.raises(grpc.RpcError) as e:
                info(openshell_pb2.GetGatewayInfoRequest(), timeout=5)
            assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        channel.close()
        # The same port still answers plain HTTP the way the real multiplexer does.
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as http_error:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert http_error.value.code == 404
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


@pytest.mark.parametrize("sim", [{"cli": "0.0.116", "gateway": "0.0.44", "sandboxes": 0}], indirect=True)
def test_live_gateway_info(sim):
    r = sim.openshell("gateway", "info")
    assert r.returncode == 1
    assert "gateway info is not supported by this gateway version" in r.stderr
    sim.swap_cli("0.0.84")
    assert "Gateway endpoint:" in strip(sim.openshell("gateway", "info").stdout)  # offline, before 0.0.85
    sim.swap_cli("0.0.116")
    assert sim.swap_gateway("0.0.116") is None
    r = sim.openshell("gateway", "info")
    assert r.returncode == 0, r.stderr
    lines = strip(r.stdout).splitlines()
    assert lines[:6] == ["Gateway Info", "", "  Gateway: nemoclaw", f"  Server: {sim.endpoint}", "  Status: healthy",
                         "  Version: 0.0.116"]
    assert lines[6:8] == ["  Compute drivers:", "    docker"] and lines[8].startswith("      Driver version: ")


def _labelled(docker_client, sim, name):
    return docker_client.containers.list(all=True, filters={"label": [
        f"openshell.ai/sandbox-name={name}", f"nemoclaw-sim/deployment={sim.deployment.deployment_id}"]})


@pytest.mark.parametrize("sim", [{"cli": "0.0.116", "gateway": "0.0.116", "sandboxes": 1}], indirect=True)
def test_0_0_116_layout_and_listing(sim, docker_client):
    [c] = _labelled(docker_client, sim, "alpha")
    sid = c.labels["openshell.ai/sandbox-id"]
    assert c.name == f"openshell-default--alpha-{sid}"
    assert c.labels["openshell.ai/sandbox-workspace"] == "default" and not any(k.endswith("/isolation-role") for k in c.labels)
    import json

    [row] = json.loads(strip(sim.openshell("sandbox", "list", "-o", "json").stdout))
    assert (row["workspace"], row["phase"], row["annotations"]) == ("default", "Ready", {})
    # A 0.1.x CLI's workspace selector names no workspace this gateway has: nothing is found.
    sim.swap_cli("0.1.5")
    assert json.loads(strip(sim.openshell("sandbox", "list", "-o", "json").stdout)) == []


@pytest.mark.parametrize("sim", [{"cli": "0.1.5", "gateway": "0.1.5", "sandboxes": 1, "data_root": "/work"}],
                         indirect=True)
def test_0_1_x_pair_volume_workdir_and_phases(sim, docker_client):
    boxes = {c.labels["openshell.ai/isolation-role"]: c for c in _labelled(docker_client, sim, "alpha")}
    assert set(boxes) == {"sandbox", "supervisor"}
    work, sup = boxes["sandbox"], boxes["supervisor"]
    sid = work.labels["openshell.ai/sandbox-id"]
    assert sup.name == f"openshell-supervisor-{sid}" and sup.labels["openshell.ai/sandbox-id"] == sid
    assert work.attrs["Config"]["WorkingDir"] == "/work" and work.attrs["Config"]["User"] == "1000:1000"
    assert [(m["Name"], m["Destination"], m["RW"]) for m in work.attrs["Mounts"]] == [
        (f"openshell-channel-{sid}", "/.openshell", True)]
    assert [(m["Name"], m["Destination"], m["RW"]) for m in sup.attrs["Mounts"]] == [
        (f"openshell-channel-{sid}", "/.openshell", False)]

    sim.stop_sandbox("alpha")  # `openshell sandbox stop`: the phase 0.0.116 and 0.1.x record (tests/sim/test_lifecycle.py)
    import json

    [row] = json.loads(strip(sim.openshell("sandbox", "list", "-o", "json").stdout))
    assert row["phase"] == "Stopped"
    r = sim.openshell("sandbox", "delete", "alpha")
    assert r.returncode == 0, r.stderr
    assert _labelled(docker_client, sim, "alpha") == []
    assert docker_client.volumes.list(filters={"name": f"openshell-channel-{sid}"}) == []
