"""End to end on the real Docker engine, for a 0.0.44, a 0.0.116 and a 0.1.5 deployment of the
stand-in: `backup-all`, a rebuild and `gateway check` work; a drifted binary and a drifted served
version (seen through gRPC Health, with no health port on the newer two) are refused; a 0.0.116
CLI with a 0.1.5 gateway, and the reverse, are refused in preflight with the cross-line line and
nothing changed; a 0.1.x sandbox's backup holds the workload's files only.

One deployment per release for the whole module (they take a while to come up); a test that
swaps a program puts it back before it returns.
"""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.diagnosis_text import cross_line_block
from orchestrator.adapters.openshell.cli import strip_ansi
from nemoclaw_sim.install import install_program
from tests.e2e.test_gateway_drift_e2e import calls, recording_openshell, tree_digest
from tests.support.simenv import SimEnv

pytestmark = pytest.mark.docker

OLD, NEW = "2026.3.11", "2026.5.22"
DEPLOYMENTS = {
    # version: (data root of the images, health port: None = a free one, 0 = none, upstream's default)
    "0.0.44": ("/sandbox", None),
    "0.0.116": ("/sandbox", 0),
    "0.1.5": ("/work", 0),
}
SAME_LINE_OTHER = {"0.0.44": "0.0.43", "0.0.116": "0.0.115", "0.1.5": "0.1.4"}
ROLE = "openshell.ai/isolation-role"


@pytest.fixture(scope="module", params=list(DEPLOYMENTS), ids=[f"openshell-{v}" for v in DEPLOYMENTS])
def dep(request, tmp_path_factory, docker_client):
    version = request.param
    root, health_port = DEPLOYMENTS[version]
    env = SimEnv((tmp_path_factory.mktemp(f"home-{version}") / "home").resolve())
    env.home.mkdir()
    env.version, env.root = version, root  # type: ignore[attr-defined]
    try:
        env.up(cli=version, gateway=version, sandboxes=2, health_port=health_port, data_root=root)
        yield env
    finally:
        if env.paths.deployment_file.exists():
            env.down()


def nemoclaw(dep: SimEnv, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return dep.run(["nemoclaw", *args], env=env or {**dep.env, "NO_COLOR": "1"}, timeout=300)


def labelled(dep: SimEnv, docker_client, name: str) -> list:
    """The containers of sandbox `name` in this deployment (the engine is shared)."""
    return docker_client.containers.list(all=True, filters={"label": [
        f"openshell.ai/sandbox-name={name}", f"nemoclaw-sim/deployment={dep.deployment.deployment_id}"]})


def workload(dep: SimEnv, docker_client, name: str):
    found = [c for c in labelled(dep, docker_client, name) if c.labels.get(ROLE) != "supervisor"]
    assert len(found) == 1, [c.name for c in found]
    return found[0]


def sh(container, script: str) -> str:
    rc, out = container.exec_run(["sh", "-c", script], user="0")
    assert rc == 0, out
    return out.decode()


def world(dep: SimEnv, docker_client) -> dict:
    """Everything a refused run must leave alone: ~/.nemoclaw (minus run logs) and the containers."""
    own = f"nemoclaw-sim/deployment={dep.deployment.deployment_id}"  # never another test's containers
    boxes = docker_client.containers.list(all=True, filters={"label": own})
    return {"nemoclaw": tree_digest(dep.home / ".nemoclaw"), "containers": sorted((c.id, c.status) for c in boxes)}


@contextmanager
def programs(dep: SimEnv, cli: str | None = None, gateway_on_disk: str | None = None):
    """Replace the on-disk CLI and/or gateway binary (the running gateway keeps running); undo after."""
    try:
        if cli:
            install_program(dep.bin, "openshell", cli)
        if gateway_on_disk:
            install_program(dep.bin, "openshell-gateway", gateway_on_disk)
        yield
    finally:
        install_program(dep.bin, "openshell", dep.version)
        install_program(dep.bin, "openshell-gateway", dep.version)


def test_gateway_check_reads_the_served_version_over_grpc(dep):
    res = nemoclaw(dep, "gateway", "check", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["verdict"] == "ok" and doc["drift"] is False
    assert doc["served"] == {"version": dep.version, "endpoint": dep.endpoint, "source": "grpc",
                             "health_port": dep.health_port or None}
    plain = nemoclaw(dep, "gateway", "check")
    assert plain.returncode == 0
    assert f"  Served version  {dep.endpoint} ({dep.version}, via gRPC Health)  (expected {dep.version})  ok" \
        in plain.stdout.splitlines()


def test_backup_all_backs_up_the_workload_files_only(dep, docker_client):
    ws = f"{dep.root}/.openclaw/workspace"
    sh(workload(dep, docker_client, "alpha"), f"echo mine > {ws}/only-in-the-workload.txt")
    decoys = []
    for c in labelled(dep, docker_client, "alpha"):
        if c.labels.get(ROLE) == "supervisor":  # 0.1.x only: the same paths, other bytes
            for root in ("/sandbox", "/work"):
                sh(c, f"mkdir -p {root}/.openclaw/workspace && echo decoy > {root}/.openclaw/workspace/decoy.txt")
            decoys.append(c.name)
    assert bool(decoys) == dep.version.startswith("0.1.")

    res = nemoclaw(dep, "backup-all")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Pre-upgrade backup: 2 backed up, 0 failed, 0 skipped" in res.stdout
    [backup] = [p for p in (dep.home / ".nemoclaw" / "rebuild-backups" / "alpha").iterdir() if not p.name.startswith(".")]
    files = {str(p.relative_to(backup)) for p in backup.rglob("*") if p.is_file() and p.name != "rebuild-manifest.json"}
    # The whole home (the default scope), read from the workload's data root.
    assert ".openclaw/workspace/only-in-the-workload.txt" in files and ".openclaw/workspace/AGENTS.md" in files
    assert not any("decoy" in f for f in files)
    manifest = json.loads((backup / "rebuild-manifest.json").read_text())
    # The agent's canonical home (what `backups` checks against the agent); the data root it
    # was read from is the container's own, and a restore moves it under the target's root.
    assert (manifest["scope"], manifest["dir"]) == ("home", "/sandbox")


def test_rebuild_keeps_the_files_at_the_data_root(dep, docker_client):
    name = "stale"
    dep.add_sandbox(name, agent_version=OLD)
    ws = f"{dep.root}/.openclaw/workspace"
    sh(workload(dep, docker_client, name), f"echo kept > {ws}/notes.txt")

    res = nemoclaw(dep, "rebuild-sandbox", name)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1] == f"  ✓ Sandbox '{name}' rebuilt successfully"
    new = workload(dep, docker_client, name)
    assert sh(new, f"cat {ws}/notes.txt") == "kept\n"
    assert sh(new, "openclaw --version").strip() == f"OpenClaw {NEW}"
    if dep.version.startswith("0.1."):
        roles = sorted(c.labels.get(ROLE) for c in labelled(dep, docker_client, name))
        assert roles == ["sandbox", "supervisor"]


def test_drifted_binary_is_refused_and_nothing_changes(dep, docker_client, tmp_path):
    other = SAME_LINE_OTHER[dep.version]
    with programs(dep, cli=other):
        env, log = recording_openshell(dep, tmp_path)
        before = world(dep, docker_client)
        res = nemoclaw(dep, "backup-all", env=env)
        assert res.returncode == 1, res.stdout + res.stderr
        err = res.stderr.splitlines()
        assert f"  Installed OpenShell: {other}" in err
        assert f"  Running gateway binary: {os.path.realpath(dep.bin / 'openshell-gateway')} ({dep.version})" in err
        assert not any("release lines" in line for line in err)
        assert not any(c.startswith("sandbox ") for c in calls(log)), calls(log)
        assert world(dep, docker_client) == before


def test_drifted_served_version_is_found_through_grpc_health(dep, docker_client, tmp_path):
    """CLI and the binary on disk agree; the running process still serves the deployment's
    version. On the newer two no health port exists, so only gRPC Health can see it."""
    other = SAME_LINE_OTHER[dep.version]
    with programs(dep, cli=other, gateway_on_disk=other):
        env, log = recording_openshell(dep, tmp_path)
        before = world(dep, docker_client)
        res = nemoclaw(dep, "backup-all", env=env)
        assert res.returncode == 1, res.stdout + res.stderr
        err = res.stderr.splitlines()
        assert f"  Installed OpenShell: {other}" in err
        assert f"  Running gateway version: {dep.endpoint} ({dep.version})" in err
        assert not any(c.startswith("sandbox ") for c in calls(log)), calls(log)
        assert world(dep, docker_client) == before
        check = json.loads(nemoclaw(dep, "gateway", "check", "--json", env=env).stdout)
        assert check["verdict"] == "served_version_drift" and check["served"]["source"] == "grpc"


@pytest.mark.parametrize("dep", ["0.0.116", "0.1.5"], indirect=True, ids=["openshell-0.0.116", "openshell-0.1.5"])
@pytest.mark.parametrize("argv, action, command", [
    (["backup-all"], "backing up registered sandboxes", "nemoclaw backup-all"),
    (["upgrade-sandboxes"], "checking sandbox upgrade state", "nemoclaw upgrade-sandboxes"),
])
def test_cross_line_pair_is_refused_in_preflight(dep, docker_client, tmp_path, argv, action, command):
    cli = {"0.0.116": "0.1.5", "0.1.5": "0.0.116"}[dep.version]
    with programs(dep, cli=cli):
        env, log = recording_openshell(dep, tmp_path)
        before = world(dep, docker_client)
        res = nemoclaw(dep, *argv, env=env)
        assert res.returncode == 1, res.stdout + res.stderr
        gw = os.path.realpath(dep.bin / "openshell-gateway")
        assert res.stderr.splitlines() == cross_line_block(
            action, command, f"  Running gateway binary: {gw} ({dep.version})", cli, dep.version)
        assert not any(c.startswith("sandbox ") for c in calls(log)), calls(log)
        assert world(dep, docker_client) == before
        # Health keeps answering across the lines, so `status` says Connected: only the version tells.
        status = strip_ansi(dep.run(["openshell", "status"], env=env).stdout)
        assert "Status: Connected" in status and f"Version: {dep.version}" in status


@pytest.mark.parametrize("dep", ["0.1.5"], indirect=True, ids=["openshell-0.1.5"])
def test_0_0_x_cli_listing_a_0_1_x_gateway_fails_to_decode(dep):
    with programs(dep, cli="0.0.116"):
        res = dep.run(["openshell", "sandbox", "list"], env={**dep.env, "NO_COLOR": "1"})
        assert res.returncode == 1
        assert "failed to decode Protobuf message" in res.stderr and "Internal" in res.stderr
