"""A whole simulated host on the real Docker engine: sandboxes, resume, skew, swap, faults, down."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nemoclaw_sim.driver import LABEL_DEPLOYMENT

from tests.support.sim_helpers import listening, pid_gone, run, strip, wait_for

pytestmark = pytest.mark.docker

DECODE_ERROR = ('Error:   × status: Internal, message: "failed to decode Protobuf message:\n'
                '  │ Sandbox.metadata: ListSandboxesResponse.sandboxes: invalid wire type\n'
                '  │ value: 6", details: [], metadata: MetadataMap { headers: {} }\n')


def _containers(docker_client, sim):
    return docker_client.containers.list(all=True, filters={"label": f"{LABEL_DEPLOYMENT}={sim.deployment.deployment_id}"})


def test_up_status_list_get_and_endpoints(sim, docker_client):
    r = sim.openshell("status")
    assert r.returncode == 0 and "\x1b[" in r.stdout
    assert strip(r.stdout) == (f"Server Status\n\n  Gateway: nemoclaw\n  Server: {sim.endpoint}\n"
                               "  Status: Connected\n  Version: 0.0.44\n")
    r = sim.openshell("gateway", "info", "-g", "nemoclaw")
    assert strip(r.stdout) == f"Gateway Info\n\n  Gateway: nemoclaw\n  Gateway endpoint: {sim.endpoint}\n"

    r = sim.openshell("sandbox", "list")
    lines = strip(r.stdout).splitlines()
    assert lines[0] == "NAME   CREATED              PHASE"
    assert [ln.split()[0] for ln in lines[1:]] == ["alpha", "beta"]
    assert all(ln.split()[-1] == "Ready" for ln in lines[1:])
    assert "\x1b[32mReady\x1b[39m" in r.stdout
    assert sim.openshell("sandbox", "list", "--names").stdout == "alpha\nbeta\n"
    data = json.loads(sim.openshell("sandbox", "list", "-o", "json").stdout)
    assert [d["name"] for d in data] == ["alpha", "beta"]
    assert list(data[0]) == sorted(data[0]) == ["created_at", "current_policy_version", "id", "labels", "name",
                                                "phase", "resource_version"]
    assert data[0]["phase"] == "Ready" and data[0]["resource_version"] >= 1
    assert sim.openshell("sandbox", "list", "--ids").stdout.split() == [d["id"] for d in data]

    r = sim.openshell("sandbox", "get", "alpha")
    text = strip(r.stdout)
    assert text.startswith(f"Sandbox:\n\n  Id: {data[0]['id']}\n  Name: alpha\n  Phase: Ready\n  Resource version: ")
    assert "  Policy source: sandbox\n  Revision: 1\n\nPolicy:\n\n  version: 1\n" in text
    r = sim.openshell("sandbox", "get", "nope")
    assert r.returncode == 1
    assert r.stderr.startswith('Error:   × status: NotFound, message: "sandbox not found", details: [], metadata:\n')

    # Containers as the Docker driver makes them.
    for d in data:
        c = docker_client.containers.get(f"openshell-{d['name']}-{d['id']}")
        assert c.status == "running" and c.attrs["HostConfig"]["NetworkMode"] == "none"
        assert {k: v for k, v in c.labels.items() if k.startswith("openshell.ai/")} == {
            "openshell.ai/managed-by": "openshell", "openshell.ai/sandbox-id": d["id"],
            "openshell.ai/sandbox-name": d["name"], "openshell.ai/sandbox-namespace": "default"}
        assert c.image.tags == ["nemoclaw-sim/openclaw:2026.5.22"]
    rc, out = c.exec_run(["openclaw", "--version"])
    assert (rc, out) == (0, b"OpenClaw 2026.5.22\n")

    # Health routes only on the health port; the main port answers 404.
    body = urllib.request.urlopen(f"http://127.0.0.1:{sim.health_port}/readyz", timeout=10).read()
    assert json.loads(body) == {"status": "healthy", "version": "0.0.44"}
    assert urllib.request.urlopen(f"http://127.0.0.1:{sim.health_port}/healthz", timeout=10).status == 200
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{sim.endpoint}/healthz", timeout=10)
    assert e.value.code == 404

    # What NemoClaw reads: marker, pid file, argv0, registry.
    m = sim.marker()
    assert m["version"] == 1 and m["driver"] == "docker" and m["endpoint"] == sim.endpoint
    assert m["gatewayBin"] == os.path.realpath(sim.bin / "openshell-gateway") and m["openshellVersion"] == "0.0.44"
    assert oct((sim.state_dir / "runtime.json").stat().st_mode & 0o777) == "0o600"
    assert oct(sim.state_dir.stat().st_mode & 0o777) == "0o700"
    assert int((sim.state_dir / "openshell-gateway.pid").read_text()) == m["pid"]
    argv0 = Path(f"/proc/{m['pid']}/cmdline").read_bytes().split(b"\0")[0].decode()
    assert argv0 == str(sim.bin / "openshell-gateway")
    reg = sim.registry()
    assert reg["defaultSandbox"] == "alpha"
    assert reg["sandboxes"]["beta"]["agent"] == "openclaw" and reg["sandboxes"]["beta"]["agentVersion"] == "2026.5.22"


@pytest.mark.parametrize("sim", [{"sandboxes": 1}], indirect=True)
def test_create_delete_stop_resume_and_faults(sim, docker_client):
    r = sim.openshell("sandbox", "create", "--name", "extra", "--from", "nemoclaw-sim/openclaw:2026.5.22")
    assert r.returncode == 0, r.stderr
    assert strip(r.stdout) == "\nCreated sandbox: extra\n\n"
    assert "extra  " in strip(sim.openshell("sandbox", "list").stdout)

    sim.set_fault("create", "quota exceeded")
    r = sim.openshell("sandbox", "create", "--name", "never", "--from", "nemoclaw-sim/busybox:latest")
    assert r.returncode == 1 and r.stderr.startswith('Error:   × status: Internal, message: "quota exceeded"')
    assert "never" not in sim.openshell("sandbox", "list", "--names").stdout

    r = sim.openshell("sandbox", "delete", "extra", "ghost")
    assert strip(r.stdout) == "✓ Deleted sandbox extra\n! Sandbox ghost not found\n"
    assert sim.openshell("sandbox", "list", "--names").stdout == "alpha\n"

    # Stopped behind the gateway's back → not Ready; an old agent version on demand.
    sim.add_sandbox("old", agent_version="2026.3.11", stopped=True)
    rows = {ln.split()[0]: ln.split()[-1] for ln in strip(sim.openshell("sandbox", "list").stdout).splitlines()[1:]}
    assert rows == {"alpha": "Ready", "old": "Error"}
    assert sim.registry()["sandboxes"]["old"]["agentVersion"] == "2026.3.11"

    # Gateway shutdown stops containers; a restart resumes them (the user-stopped one stays stopped).
    sim.stop_gateway()
    assert {c.labels["openshell.ai/sandbox-name"]: c.status for c in _containers(docker_client, sim)} == {
        "alpha": "exited", "old": "exited"}
    sim.start_gateway()
    assert {c.labels["openshell.ai/sandbox-name"]: c.status for c in _containers(docker_client, sim)} == {
        "alpha": "running", "old": "exited"}
    assert "Resumed sandbox during gateway startup" in strip((sim.state_dir / "openshell-gateway.log").read_text())

    # A container that disappeared while the gateway was offline ⇒ Error.
    sim.stop_gateway()
    # This deployment's alpha only: the engine is shared with other deployments that have one too.
    [alpha] = [c for c in _containers(docker_client, sim) if c.labels.get("openshell.ai/sandbox-name") == "alpha"]
    alpha.remove(force=True)
    sim.start_gateway()
    assert "alpha" in strip(sim.openshell("sandbox", "list").stdout)
    assert json.loads(sim.openshell("sandbox", "list", "-o", "json").stdout)[0]["phase"] == "Error"

    r = sim.openshell("sandbox", "delete", "--all")
    assert r.returncode == 0 and sim.openshell("sandbox", "list").stdout == "No sandboxes found.\n"


def test_swap_gateway_crash_then_down_leaves_nothing(sim, docker_client):
    error = sim.swap_gateway("0.0.43")
    assert error and "migration 5 was previously applied but" in error
    pid = sim.marker()["pid"]
    assert wait_for(lambda: pid_gone(pid), 10)
    assert not listening(sim.port)
    r = sim.openshell("status")
    assert r.returncode == 1 and strip(r.stdout).splitlines()[:4] == [
        "Server Status", "", "  Gateway: nemoclaw", f"  Server: {sim.endpoint}"]
    assert r.stderr.startswith("Error:   × client error (Connect)\n")
    assert sim.run([str(sim.bin / "openshell-gateway"), "--version"]).stdout == "openshell-gateway 0.0.43\n"

    assert sim.swap_gateway("0.0.44") is None
    new_pid = sim.marker()["pid"]
    assert sim.openshell("sandbox", "list", "--names").stdout == "alpha\nbeta\n"
    sim.down()
    assert wait_for(lambda: pid_gone(new_pid), 10)
    assert _containers(docker_client, sim) == []
    assert not listening(sim.port)


@pytest.mark.parametrize("sim", [{"cli": "0.0.44", "gateway": "0.0.43", "sandboxes": 1}], indirect=True)
def test_skew_43_44_is_additive(sim):
    data = json.loads(sim.openshell("sandbox", "list", "-o", "json").stdout)
    assert data[0]["phase"] == "Ready" and data[0]["resource_version"] == 0
    assert strip(sim.openshell("status").stdout).endswith("Status: Connected\n  Version: 0.0.43\n")
    sim.swap_cli("0.0.43")
    sim.swap_gateway("0.0.44")
    assert strip(sim.openshell("sandbox", "list").stdout).splitlines()[1].endswith("Ready")


@pytest.mark.parametrize("sim", [{"cli": "0.0.44", "gateway": "0.0.36", "sandboxes": 1}], indirect=True)
def test_skew_036_gateway_decode_error(sim):
    r = sim.openshell("sandbox", "list")
    assert r.returncode == 1 and r.stderr == DECODE_ERROR
    r = sim.openshell("status")
    assert r.returncode == 0 and strip(r.stdout).endswith("Status: Connected\n  Version: 0.0.36\n")
    r = sim.openshell("sandbox", "get", "alpha")
    assert r.returncode == 1 and "Sandbox.metadata: SandboxResponse.sandbox: invalid wire type" in r.stderr.replace("\n  │ ", " ")


@pytest.mark.parametrize("sim", [{"cli": "0.0.52", "gateway": "0.0.53", "sandboxes": 1}], indirect=True)
def test_skew_053_phase_unspecified_both_ways(sim):
    def phases() -> list[str]:
        return [ln.split()[-1] for ln in strip(sim.openshell("sandbox", "list").stdout).splitlines()[1:]]

    assert phases() == ["Unspecified"]
    sim.swap_cli("0.0.53")
    assert phases() == ["Ready"]
    assert sim.swap_gateway("0.0.52") is None
    assert phases() == ["Unspecified"]
    assert json.loads(sim.openshell("sandbox", "list", "-o", "json").stdout)[0]["current_policy_version"] == 0


@pytest.mark.parametrize("sim", [{"sandboxes": 0}], indirect=True)
def test_nemoclaw_sim_cli_and_cluster_container(sim, docker_client):
    exe = [str(Path(os.path.dirname(os.path.abspath(os.sys.executable))) / "nemoclaw-sim")]
    r = run(exe + ["status", "--home", str(sim.home), "--json"], sim.env)
    st = json.loads(r.stdout)
    assert st["gateway_running"] and st["port"] == sim.port and st["sandboxes"] == {}
    r = run(exe + ["cluster", "up", "--home", str(sim.home), "--version", "0.0.36"], sim.env)
    assert r.returncode == 0, r.stderr
    c = docker_client.containers.get("openshell-cluster-nemoclaw")
    assert c.attrs["Config"]["Image"] == "ghcr.io/nvidia/openshell/cluster:0.0.36" and c.status == "running"
    assert c.attrs["NetworkSettings"]["Ports"] == {"30051/tcp": [{"HostIp": "127.0.0.2", "HostPort": str(sim.port)}]}
    r = run(exe + ["down", "--home", str(sim.home)], sim.env)
    assert r.returncode == 0, r.stderr
    assert [x.name for x in docker_client.containers.list(all=True, filters={"name": "openshell-cluster-nemoclaw"})] == []
    r = run(exe + ["swap-gateway", "--home", str(sim.home), "banana"], sim.env)
    assert r.returncode == 2 and "not an OpenShell version" in r.stderr
