"""Issue 4's acceptance scenarios, end to end: the installed `nemoclaw` against a simulated host
(`nemoclaw-sim up`: real `openshell`/`openshell-gateway` programs, a real gateway process with
its SQLite migrations, sandboxes as real containers on the real Docker engine).

Every `openshell` call the orchestrator makes goes through a recording wrapper named by
NEMOCLAW_OPENSHELL_BIN, so a test can prove `openshell sandbox list` was never run.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from tests.support.diagnosis_text import host_process_drift_block

pytestmark = pytest.mark.docker

def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ~/.nemoclaw except the run logs, with its SHA-256 (and every dir)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts and rel.parts[0] == "runs":
            continue
        out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def recording_openshell(sim, tmp_path: Path) -> tuple[dict[str, str], Path]:
    log = tmp_path / "openshell-calls.log"
    wrapper_dir = tmp_path / "wrap"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "openshell"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {sim.bin / "openshell"} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return {**sim.env, "NEMOCLAW_OPENSHELL_BIN": str(wrapper), "NO_COLOR": "1"}, log


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("sim", [{"cli": "0.0.44", "gateway": "0.0.44", "sandboxes": 2}], indirect=True)
@pytest.mark.parametrize(
    "argv, action, command",
    [
        (["backup-all"], "backing up registered sandboxes", "nemoclaw backup-all"),
        (["upgrade-sandboxes"], "checking sandbox upgrade state", "nemoclaw upgrade-sandboxes"),
        (["upgrade-sandboxes", "--check"], "checking sandbox upgrade state", "nemoclaw upgrade-sandboxes"),
    ],
)
def test_bug_report_swapped_gateway_binary_is_refused_and_nothing_changes(sim, tmp_path, argv, action, command):
    """DGX Station report: CLI 0.0.44, gateway binary swapped to 0.0.43 (host-process driver, no
    cluster container); the 0.0.43 gateway died on the 0.0.44 database's migration 5."""
    failure = sim.swap_gateway("0.0.43")
    assert failure and "migration 5 was previously applied" in failure
    env, log = recording_openshell(sim, tmp_path)
    before = tree_digest(sim.home / ".nemoclaw")
    r = sim.run(["nemoclaw", *argv], env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    gateway_bin = os.path.realpath(sim.bin / "openshell-gateway")
    assert r.stderr.splitlines() == host_process_drift_block(action, command, gateway_bin, "0.0.44", "0.0.43")
    assert "Running gateway image" not in r.stderr
    assert "healthy" not in r.stdout and "is healthy" not in r.stderr
    assert r.stdout == ""
    assert not any(c.startswith("sandbox list") for c in calls(log)), calls(log)
    assert tree_digest(sim.home / ".nemoclaw") == before


@pytest.mark.parametrize("sim", [{"cli": "0.0.37", "gateway": "0.0.37", "sandboxes": 1}], indirect=True)
def test_cluster_container_image_drift_names_the_image(sim, tmp_path, docker_client):
    """Legacy driver: a running `openshell-cluster-nemoclaw` at 0.0.36 published on the active
    gateway's port, with CLI 0.0.37: the image drift variant of the diagnosis."""
    from nemoclaw_sim import cluster

    cluster.up(docker_client, "0.0.36", sim.port, deployment=sim.deployment.deployment_id)
    try:
        env, log = recording_openshell(sim, tmp_path)
        before = tree_digest(sim.home / ".nemoclaw")
        r = sim.run(["nemoclaw", "backup-all"], env=env)
        assert r.returncode == 1, r.stdout + r.stderr
        err = r.stderr.splitlines()
        i = err.index("  OpenShell gateway schema preflight failed before backing up registered sandboxes.")
        assert err[i + 1 : i + 3] == [
            "  Installed OpenShell: 0.0.37",
            "  Running gateway image: ghcr.io/nvidia/openshell/cluster:0.0.36 (0.0.36)",
        ]
        assert err[-1] == (
            "  If gateway recreation is required, preserve sandbox state first; do not remove "
            "`openshell-cluster-nemoclaw` Docker volumes unless you have a backup and explicitly accept state loss."
        )
        assert "Running gateway binary" not in r.stderr
        assert not any(c.startswith("sandbox list") for c in calls(log))
        assert tree_digest(sim.home / ".nemoclaw") == before
    finally:
        cluster.down(docker_client)


@pytest.mark.parametrize("sim", [{"cli": "0.0.44", "gateway": "0.0.44", "sandboxes": 1}], indirect=True)
def test_old_gateway_process_with_new_binary_on_disk_is_caught_by_served_version(sim, tmp_path):
    """The gap upstream calls unresolvable: the process still serves 0.0.43 while the binary on
    disk (and the CLI) are 0.0.44. The served-version probe (gRPC Health) sees it before any sandbox call."""
    from nemoclaw_sim.install import install_program

    sim.stop_gateway()
    install_program(sim.bin, "openshell-gateway", "0.0.43")
    # A fresh database for the old gateway, so it starts (as if it had never been upgraded).
    for db in sim.state_dir.glob("openshell.db*"):
        db.unlink()
    sim.start_gateway()
    install_program(sim.bin, "openshell-gateway", "0.0.44")  # the in-place upgrade of the binary only
    env, log = recording_openshell(sim, tmp_path)
    r = sim.run(["nemoclaw", "backup-all"], env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"  Running gateway version: http://127.0.0.1:{sim.port} (0.0.43)" in r.stderr.splitlines()
    assert "  Installed OpenShell: 0.0.44" in r.stderr.splitlines()
    assert not any(c.startswith("sandbox list") for c in calls(log))


@pytest.mark.parametrize("sim", [{"cli": "0.0.88", "gateway": "0.0.88", "sandboxes": 1}], indirect=True)
def test_gateway_crashing_on_start_is_never_healthy_and_refuses_with_cause(sim, tmp_path):
    """CLI and binary agree (0.0.44) but the database was written by 0.0.88 (migration 6): the
    preflight passes, the list finds the gateway down, recovery starts it, it dies on the
    migration. It must be reported as failed with the cause, never as healthy."""
    failure = sim.swap_gateway("0.0.44")
    assert failure and "migration 6 was previously applied" in failure
    sim.swap_cli("0.0.44")
    env, _ = recording_openshell(sim, tmp_path)
    env.update(NEMOCLAW_HEALTH_POLL_COUNT="20", NEMOCLAW_HEALTH_POLL_INTERVAL="0.25")
    r = sim.run(["nemoclaw", "backup-all"], env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    text = r.stdout + r.stderr
    assert "  Docker-driver gateway failed to start." in text
    assert "the gateway database was written by a newer OpenShell" in text
    assert "migration 6 was previously applied but" in text
    assert "No sandbox data was changed." in text
    assert "healthy" not in r.stdout and "gateway is healthy" not in r.stderr


@pytest.mark.parametrize("sim", [{"sandboxes": 1}], indirect=True)
def test_stopped_gateway_is_recovered_on_its_registered_port_and_the_list_retried(sim, tmp_path):
    """The gateway is down (no drift): backup-all selects `nemoclaw`, starts the gateway as
    onboarding does, on the port its registration names, re-checks it is really healthy, lists
    once more and backs up. `nemoclaw-sim down` stops the gateway nemoclaw started."""
    sim.stop_gateway()
    env, log = recording_openshell(sim, tmp_path)
    env.pop("NEMOCLAW_GATEWAY_PORT", None)
    env.update(NEMOCLAW_HEALTH_POLL_COUNT="40", NEMOCLAW_HEALTH_POLL_INTERVAL="0.25")
    r = sim.run(["nemoclaw", "backup-all"], env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "  ✓ Docker-driver gateway is healthy" in r.stdout.splitlines()
    assert "Pre-upgrade backup: 1 backed up, 0 failed, 0 skipped" in r.stdout
    assert [c for c in calls(log) if c.startswith("sandbox list")] == ["sandbox list -o json"] * 2
    # Containers are found by the ids of that listing: no `sandbox get` (it records a last-used sandbox).
    assert not any(c.startswith("sandbox get") for c in calls(log)), calls(log)
    marker = sim.marker()
    assert marker["endpoint"].endswith(f":{sim.port}")
    assert sim.openshell("status").returncode == 0
