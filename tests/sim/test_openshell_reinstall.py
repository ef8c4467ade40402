"""`nemoclaw-sim upgrade-openshell 0.1.5`: the user's reinstall of OpenShell over a 0.0.116 host
(docs/reference/openshell-reinstall.md). The 0.0.x gateway is stopped, its database put aside,
the 0.1.5 CLI and gateway installed and started on a fresh database; the 0.0.x containers stay
in Docker where the new gateway neither lists nor deletes them; new sandboxes are the 0.1.x
pair; NemoClaw's registry and the gateway registration are left as they were.

One 0.0.116 deployment, upgraded once, for the module; a test that changes it puts it back.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from nemoclaw_sim import cluster
from nemoclaw_sim.deploy import SimError, pid_alive
from tests.support.sim_helpers import strip, wait_for
from tests.support.simenv import SimEnv

pytestmark = pytest.mark.docker

ROLE = "openshell.ai/isolation-role"
OTHER_PORT = 18080  # gamma is registered in ~/.nemoclaw/gateways/18080/


def _files(home: Path) -> dict[str, bytes]:
    """NemoClaw's registry roots and the gateway registration, byte for byte."""
    roots = [home / ".nemoclaw", home / ".config" / "openshell"]
    return {str(p.relative_to(home)): p.read_bytes() for r in roots for p in sorted(r.rglob("*")) if p.is_file()}


def _sandbox_rows(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return sorted(r[0] for r in conn.execute("SELECT name FROM objects WHERE object_type = 'sandbox'"))
    finally:
        conn.close()


def _migrations(db: Path) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT version FROM _sqlx_migrations ORDER BY version")]
    finally:
        conn.close()


def _containers(docker_client, sim: SimEnv, name: str | None = None) -> list:
    labels = [f"nemoclaw-sim/deployment={sim.deployment.deployment_id}"]
    if name:
        labels.append(f"openshell.ai/sandbox-name={name}")
    return docker_client.containers.list(all=True, filters={"label": labels})


@pytest.fixture(scope="module")
def up(tmp_path_factory, docker_client):
    """A 0.0.116 host with alpha (Ready), beta (Stopped) and gamma (registered under another
    port), reinstalled as 0.1.5 through the `nemoclaw-sim` program; what was there before."""
    sim = SimEnv((tmp_path_factory.mktemp("reinstall") / "home").resolve())
    sim.home.mkdir()
    try:
        sim.up(cli="0.0.116", gateway="0.0.116", sandboxes=2, health_port=0)
        sim.stop_sandbox("beta")
        sim.add_sandbox("gamma", gateway_port=OTHER_PORT)
        before = {
            "containers": {c.name: c.id for c in _containers(docker_client, sim)},
            "files": _files(sim.home),
            "gateway_pid": sim.deployment.gateway_pid,
        }
        res = sim.run(["nemoclaw-sim", "upgrade-openshell", "--home", str(sim.home), "0.1.5"])
        yield sim, before, res
    finally:
        if sim.paths.deployment_file.exists():
            sim.down()


def test_cli_and_gateway_report_0_1_5_on_a_fresh_database(up):
    sim, before, res = up
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"openshell-gateway 0.0.116 stopped (pid {before['gateway_pid']})"
    assert lines[2] == "openshell 0.1.5 and openshell-gateway 0.1.5 installed (were 0.0.116 and 0.0.116)"
    assert lines[3].startswith("openshell-gateway 0.1.5 running (pid ") and lines[3].endswith(" on a fresh database")
    assert not pid_alive(before["gateway_pid"])

    assert sim.openshell("--version").stdout.strip() == "openshell 0.1.5"
    assert sim.run(["openshell-gateway", "--version"]).stdout.strip() == "openshell-gateway 0.1.5"
    status = strip(sim.openshell("status").stdout)
    assert "Status: Connected" in status and "Version: 0.1.5" in status
    from openshell import SandboxClient  # the SDK over real gRPC, as the orchestrator's probe

    with SandboxClient(f"127.0.0.1:{sim.port}", timeout=5) as client:
        assert client.health().version == "0.1.5"
    marker = sim.marker()
    assert marker["pid"] == sim.deployment.gateway_pid and marker["openshellVersion"] == "0.1.5"
    assert marker["gatewayBin"] == str((sim.bin / "openshell-gateway").resolve())

    db, backup = sim.state_dir / "openshell.db", sim.state_dir / "openshell.db.bak-0.0.116"
    assert lines[1] == f"its database moved to {backup}"
    assert _migrations(db) == [1, 4, 5, 6, 7, 8, 9] and _sandbox_rows(db) == []
    assert _migrations(backup) == [1, 4, 5, 6] and _sandbox_rows(backup) == ["alpha", "beta", "gamma"]


def test_the_0_0_x_containers_stay_in_docker_unlisted_and_undeletable(up, docker_client):
    sim, before, res = up
    assert strip(sim.openshell("sandbox", "list").stdout).strip() == "No sandboxes found."
    assert json.loads(strip(sim.openshell("sandbox", "list", "-o", "json").stdout)) == []
    got = sim.openshell("sandbox", "get", "alpha")
    assert got.returncode == 1 and "sandbox not found" in strip(got.stderr)
    sim.openshell("sandbox", "delete", "alpha", "beta", "gamma")
    with pytest.raises(SimError, match="no sandbox container named 'beta' in this deployment"):
        sim.start_sandbox("beta", how="docker")  # nor does the stand-in itself touch a leftover
    assert {c.name: c.id for c in _containers(docker_client, sim)} == before["containers"]
    assert res.stdout.splitlines()[4] == ("0.0.x sandbox containers left in Docker, unadopted: "
                                          + ", ".join(sorted(before["containers"])))
    st = json.loads(sim.run(["nemoclaw-sim", "status", "--home", str(sim.home), "--json"]).stdout)
    assert (sorted(st["unadopted"]), st["sandboxes"], st["upgraded_from"]) == (sorted(before["containers"]), {}, "0.0.116")


def test_nemoclaw_registry_and_the_registration_are_left_as_they_were(up):
    sim, before, _ = up
    assert _files(sim.home) == before["files"]
    assert f".nemoclaw/gateways/{OTHER_PORT}/sandboxes.json" in before["files"]


def test_a_new_sandbox_is_the_0_1_x_pair_and_its_lifecycle_works(up, docker_client):
    sim, before, _ = up
    image = "nemoclaw-sim/openclaw:2026.5.22"
    r = sim.openshell("sandbox", "create", "--name", "alpha", "--from", image)  # the name of a 0.0.x leftover
    assert r.returncode == 0, r.stderr
    pair = {c.labels[ROLE]: c for c in _containers(docker_client, sim, "alpha") if ROLE in c.labels}
    assert set(pair) == {"sandbox", "supervisor"}
    sid = pair["sandbox"].labels["openshell.ai/sandbox-id"]
    assert pair["sandbox"].name == f"openshell-default--alpha-{sid}" and pair["supervisor"].name == f"openshell-supervisor-{sid}"
    assert all(c.labels["openshell.ai/sandbox-workspace"] == "default" for c in pair.values())
    [row] = json.loads(strip(sim.openshell("sandbox", "list", "-o", "json").stdout))
    assert (row["name"], row["id"], row["workspace"], row["phase"]) == ("alpha", sid, "default", "Ready")

    def phase_and_states() -> tuple[str, set[str]]:
        [row] = json.loads(strip(sim.openshell("sandbox", "list", "-o", "json").stdout))
        for c in pair.values():
            c.reload()
        return row["phase"], {c.status for c in pair.values()}

    assert sim.openshell("sandbox", "stop", "alpha").returncode == 0
    assert phase_and_states() == ("Stopped", {"exited"})
    assert sim.openshell("sandbox", "start", "alpha").returncode == 0
    assert phase_and_states() == ("Ready", {"running"})
    # The stand-in's own bare stop finds the new workload, never the 0.0.x alpha left in Docker.
    sim.stop_sandbox("alpha", how="docker")
    assert phase_and_states()[0] == "Error"
    assert sim.openshell("sandbox", "start", "alpha").returncode == 0  # 0.1.x recovers an Error sandbox
    assert phase_and_states() == ("Ready", {"running"})
    assert sim.openshell("sandbox", "delete", "alpha").returncode == 0
    assert json.loads(strip(sim.openshell("sandbox", "list", "-o", "json").stdout)) == []
    assert {c.name: c.id for c in _containers(docker_client, sim)} == before["containers"]
    assert docker_client.volumes.list(filters={"name": f"openshell-channel-{sid}"}) == []


def test_a_0_0_x_cli_against_the_new_gateway_is_the_half_upgraded_host(up):
    sim, _, _ = up
    sim.swap_cli("0.0.116")
    try:
        assert sim.openshell("--version").stdout.strip() == "openshell 0.0.116"
        assert "Version: 0.1.5" in strip(sim.openshell("status").stdout)
        r = sim.openshell("sandbox", "list")
        assert r.returncode == 1 and "failed to decode Protobuf message" in " ".join(strip(r.stderr).split())
    finally:
        sim.swap_cli("0.1.5")


def test_a_deployment_already_on_0_1_x_is_refused_and_left_alone(up):
    sim, _, _ = up
    pid, files = sim.deployment.gateway_pid, sorted(p.name for p in sim.state_dir.iterdir())
    r = sim.run(["nemoclaw-sim", "upgrade-openshell", "--home", str(sim.home), "0.1.5"])
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == (f"Error: the deployment in {sim.home} already runs openshell-gateway 0.1.5, not a 0.0.x "
                        "release; use swap-cli or swap-gateway to change versions within the 0.1.x line.\n")
    assert sim.deployment.gateway_pid == pid and pid_alive(pid)
    assert sorted(p.name for p in sim.state_dir.iterdir()) == files


def _restart_as_nemoclaw(sim: SimEnv) -> subprocess.Popen:
    """What NemoClaw's gateway recovery does: the same gateway started by another launcher, with
    its own pid file and marker; the stand-in's deployment.json still names the old pid."""
    from nemoclaw_sim import deploy

    dep = sim.deployment
    deploy.stop_gateway(dep)
    env = {**sim.env, "NEMOCLAW_SIM_FAULTS": str(sim.paths.faults_file), "NEMOCLAW_SIM_DEPLOYMENT": dep.deployment_id}
    proc = subprocess.Popen(deploy.gateway_argv(sim.paths, dep), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    sim.paths.pid_file.write_text(f"{proc.pid}\n")
    assert wait_for(lambda: "Version: 0.0.116" in strip(sim.openshell("status").stdout), 60)
    return proc


@pytest.mark.parametrize("sim", [{"cli": "0.0.116", "gateway": "0.0.116", "sandboxes": 1, "health_port": 0}],
                         indirect=True)
def test_unknown_versions_are_refused_and_any_0_0_x_gateway_is_stopped(sim, docker_client):
    help_ = sim.run(["nemoclaw-sim", "upgrade-openshell", "--help"])
    assert help_.returncode == 0 and "Usage: nemoclaw-sim upgrade-openshell [OPTIONS] VERSION" in help_.stdout
    assert "unadopted" in help_.stdout
    pid = sim.deployment.gateway_pid
    for version in ("0.1.99", "0.2.0", "0.0.117"):
        r = sim.run(["nemoclaw-sim", "upgrade-openshell", "--home", str(sim.home), version])
        assert r.returncode == 1 and r.stderr == (
            f"Error: OpenShell {version} is not a 0.1.x release the stand-in knows (0.1.0 to 0.1.11); "
            "give one of those, e.g. 0.1.5.\n")
    r = sim.run(["nemoclaw-sim", "upgrade-openshell", "--home", str(sim.home), "latest"])
    assert r.returncode == 2 and "not an OpenShell version: 'latest'" in r.stderr
    assert (sim.deployment.gateway_version, sim.deployment.gateway_pid) == ("0.0.116", pid) and pid_alive(pid)

    # The other half-upgraded host: the 0.1.x CLI is installed, the 0.0.x gateway still runs, and
    # it runs as NemoClaw restarted it, next to this deployment's legacy cluster container.
    sim.swap_cli("0.1.5")
    restarted = _restart_as_nemoclaw(sim)
    cluster.up(docker_client, "0.0.36", sim.port, deployment=sim.deployment.deployment_id)
    try:
        done = sim.upgrade_openshell("0.1.5")  # the Python API the workflow tests use
        assert not pid_alive(restarted.pid)
        assert done.old_gateway_pids == [restarted.pid]
        assert (done.old_cli, done.old_gateway, done.version) == ("0.1.5", "0.0.116", "0.1.5")
        assert done.cluster_stopped == cluster.cluster_name()
        assert docker_client.containers.get(cluster.cluster_name()).status == "exited"
        assert "Version: 0.1.5" in strip(sim.openshell("status").stdout)
        assert len(done.unadopted) == 1 and done.unadopted[0].startswith("openshell-default--alpha-")
    finally:
        if restarted.poll() is None:
            restarted.kill()
            restarted.wait()
    sim.down()  # the 0.0.x leftover and the cluster container belong to the deployment: `down` removes them
    assert _containers(docker_client, sim) == []


@pytest.mark.parametrize("sim", [{"cli": "0.0.116", "gateway": "0.0.116", "sandboxes": 0}], indirect=True)
def test_a_0_0_x_gateway_that_is_down_is_reinstalled_all_the_same(sim):
    health_port = sim.health_port
    sim.stop_gateway()  # crashed, or stopped by the user first as the guide says
    r = sim.run(["nemoclaw-sim", "upgrade-openshell", "--home", str(sim.home), "0.1.2"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "openshell-gateway 0.0.116 was not running"
    assert r.stdout.splitlines()[-1] == "0.0.x sandbox containers left in Docker, unadopted: none"
    assert "Version: 0.1.2" in strip(sim.openshell("status").stdout)
    import urllib.request  # the same health port as before

    with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=5) as reply:
        assert json.loads(reply.read())["version"] == "0.1.2"
