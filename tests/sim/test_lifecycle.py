"""The stand-in's sandbox lifecycle (docs/reference/sandbox-lifecycle.md), as programs against the
real Docker engine: `openshell sandbox stop` gives phase Stopped, anything else that stops the
container (a bare `docker stop`, `docker kill`) gives Error; `openshell sandbox start` starts a
Stopped one, 0.0.116 refuses an Error one with upstream's words (#11885) while 0.1.x recovers
it (OS#2269); 0.1.x's workload and supervisor companion are started and stopped together, and a
bare start of the workload alone never reaches Ready."""

from __future__ import annotations

import re

import pytest

from tests.support.sim_helpers import strip

pytestmark = pytest.mark.docker

ROLES = ("openshell.ai/isolation-role", "openshell.io/isolation-role")


def phase(sim, name: str) -> str:
    res = sim.openshell("sandbox", "get", name)
    assert res.returncode == 0, res.stderr
    return re.search(r"^\s*Phase:\s*(\S+)", strip(res.stdout), re.M).group(1)


def states(docker_client, sim, name: str) -> dict[str, str]:
    """role ("sandbox" for a single container) -> Docker state, of this deployment's NAME."""
    found = docker_client.containers.list(all=True, filters={"label": [
        f"openshell.ai/sandbox-name={name}", f"nemoclaw-sim/deployment={sim.deployment.deployment_id}"]})
    return {next((c.labels[k] for k in ROLES if k in c.labels), "sandbox"): c.status for c in found}


@pytest.mark.parametrize("sim", [{"cli": "0.0.116", "gateway": "0.0.116", "sandboxes": 1},
                                 {"cli": "0.1.5", "gateway": "0.1.5", "sandboxes": 1}],
                         indirect=True, ids=["0.0.116", "0.1.5"])
def test_stopped_and_error_phases_and_start_stop(sim, docker_client):
    split = sim.deployment.gateway_version.startswith("0.1.")
    roles = {"sandbox", "supervisor"} if split else {"sandbox"}
    assert phase(sim, "alpha") == "Ready"

    # Through OpenShell: Stopped, every container of the pair stopped.
    res = sim.openshell("sandbox", "stop", *(["--workspace", "default"] if split else []), "alpha")
    assert res.returncode == 0 and strip(res.stdout) == "✓ Stopped sandbox alpha\n", res.stdout + res.stderr
    assert phase(sim, "alpha") == "Stopped"
    assert states(docker_client, sim, "alpha") == {r: "exited" for r in roles}
    # A gateway restart leaves a Stopped sandbox stopped (its stop is recorded).
    sim.stop_gateway()
    sim.start_gateway()
    assert phase(sim, "alpha") == "Stopped" and set(states(docker_client, sim, "alpha").values()) == {"exited"}
    res = sim.openshell("sandbox", "start", "alpha")
    assert res.returncode == 0 and strip(res.stdout) == "✓ Started sandbox alpha\n", res.stdout + res.stderr
    assert phase(sim, "alpha") == "Ready" and states(docker_client, sim, "alpha") == {r: "running" for r in roles}

    # Behind the gateway's back: Error, whether stopped or killed.
    for how in ("docker", "kill"):
        sim.stop_sandbox("alpha", how=how)
        assert phase(sim, "alpha") == "Error", how
        res = sim.openshell("sandbox", "start", "alpha")
        if split:  # 0.1.0 recovers an Error sandbox (OS#2269)
            assert res.returncode == 0, res.stderr
            assert phase(sim, "alpha") == "Ready" and states(docker_client, sim, "alpha") == {r: "running" for r in roles}
        else:  # 0.0.116 refuses it (NemoClaw #11885)
            assert res.returncode == 1
            unwrapped = " ".join(strip(res.stderr).replace("│", " ").split())  # miette wraps the report
            assert 'message: "sandbox must be Stopped to start (current phase: Error)"' in unwrapped, res.stderr
            assert phase(sim, "alpha") == "Error" and states(docker_client, sim, "alpha")["sandbox"] == "exited"
            sim.start_sandbox("alpha", how="docker")  # back to running for the next round
            assert phase(sim, "alpha") == "Ready"

    # A bare `docker start` of a 0.1.x workload alone (its supervisor down) never becomes Ready.
    if split:
        pair = {c.labels[ROLES[0]]: c for c in docker_client.containers.list(all=True, filters={"label": [
            "openshell.ai/sandbox-name=alpha", f"nemoclaw-sim/deployment={sim.deployment.deployment_id}"]})}
        for c in pair.values():  # as a Docker daemon restart leaves them
            c.stop(timeout=10)
        pair["sandbox"].start()
        assert states(docker_client, sim, "alpha") == {"sandbox": "running", "supervisor": "exited"}
        assert phase(sim, "alpha") != "Ready"


@pytest.mark.parametrize("sim", [{"sandboxes": 1}], indirect=True)
def test_releases_before_0_0_116_have_no_start_or_stop(sim):
    res = sim.openshell("sandbox", "stop", "alpha")
    assert res.returncode == 2 and "unrecognized subcommand 'stop'" in strip(res.stderr), res.stderr
    sim.stop_sandbox("alpha")  # the stand-in falls back to a bare `docker stop`: Error
    assert phase(sim, "alpha") == "Error"
