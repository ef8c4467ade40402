"""The legacy cluster-container path against a real container (docs/reference/gateway-preflight.md, "Legacy cluster container").

Each test uses its own gateway name `nemoclaw-<unique>` so its `openshell-cluster-<gateway>`
container can't clash with a parallel test.
"""

from __future__ import annotations

import pytest

from orchestrator.adapters.openshell import decide, format_diagnosis, observe
from orchestrator.adapters.openshell.cluster import inspect_cluster
from orchestrator.adapters.openshell.diagnosis import backup_all_wording
from orchestrator.kernel.paths import Paths

from tests.support.fakes import INFO, STATUS_CONNECTED, gateway_script

pytestmark = pytest.mark.docker


@pytest.fixture
def gw(fake_openshell, unique) -> str:
    """Point the fake CLI at gateway `nemoclaw-<unique>`."""
    name = f"nemoclaw-{unique}"
    fake_openshell.gateway = name
    fake_openshell.set(status=STATUS_CONNECTED, info=INFO)
    return name


@pytest.fixture
def cluster(docker_client, base_image, gw):
    """Create `openshell-cluster-<gw>` from the busybox image re-tagged as the given ref."""
    made = []

    def make(image: str, host_port: int, running: bool = True):
        repo, _, tag = image.rpartition(":")
        docker_client.images.get(base_image).tag(repo, tag)
        c = docker_client.containers.create(
            image, "sleep 600", name=f"openshell-cluster-{gw}", network_mode="none",
            ports={"30051/tcp": ("0.0.0.0", host_port)},
        )  # fmt: skip
        made.append((c, image))
        if running:
            c.start()
        return c

    yield make
    for c, image in made:
        c.remove(force=True)
        docker_client.images.remove(image)


def _observe(gw: str):
    return observe(gw, state_dir=Paths.from_env().gateway_state_dir)


def test_patched_image_drift(fake_openshell, gw, cluster, unique):
    image = f"nemoclaw-cluster:0.0.36-fuse-overlayfs-{unique}"
    cluster(image, fake_openshell.port)
    obs = _observe(gw)
    assert obs.cluster is not None and obs.cluster.running and fake_openshell.port in obs.cluster.host_ports
    issue = decide(obs)
    assert issue is not None and issue.kind == "image_drift"
    lines = format_diagnosis(issue, backup_all_wording())
    assert f"  Running gateway image: {image} (0.0.36)" in lines
    assert "  Installed OpenShell: 0.0.37" in lines
    assert lines[-1] == (
        f"  If gateway recreation is required, preserve sandbox state first; do not remove `openshell-cluster-{gw}` "
        "Docker volumes unless you have a backup and explicitly accept state loss."
    )
    assert not fake_openshell.called("sandbox list")


def test_upstream_cluster_image_newer_is_drift_too(fake_openshell, gw, cluster, unique):
    cluster(f"ghcr.io/nvidia/openshell/cluster:0.0.38-{unique}", fake_openshell.port)
    issue = decide(_observe(gw))
    assert issue is not None and issue.drift.current_version == "0.0.38"


def test_cluster_on_other_port_or_stopped_is_not_active(fake_openshell, gw, cluster, unique, home):
    c = cluster(f"nemoclaw-cluster:0.0.36-x{unique}", fake_openshell.port + 1)
    obs = _observe(gw)
    assert obs.cluster is not None and not obs.cluster_active and decide(obs) is None
    # a stopped leftover cluster must not mask host-process drift
    c.stop(timeout=0)
    gateway_script(home / "bin" / "openshell-gateway", "0.0.43")
    obs = _observe(gw)
    assert obs.cluster is not None and not obs.cluster.running
    issue = decide(obs)
    assert issue is not None and issue.kind == "host_process_drift"


def test_equal_active_cluster_suppresses_host_check(fake_openshell, gw, cluster, unique, home):
    gateway_script(home / "bin" / "openshell-gateway", "0.0.43")  # would drift, but the active cluster wins
    cluster(f"ghcr.io/nvidia/openshell/cluster:0.0.37-{unique}", fake_openshell.port)
    obs = _observe(gw)
    assert obs.cluster_active and obs.cluster.version == "0.0.37"
    assert decide(obs) is None


def test_unhealthy_gateway_means_cluster_not_active(fake_openshell, gw, cluster, unique):
    fake_openshell.set(status="Server Status\n\n  Gateway: other\n  Status: Connected\n")
    cluster(f"nemoclaw-cluster:0.0.36-y{unique}", fake_openshell.port)
    obs = _observe(gw)
    assert obs.cluster is not None and obs.cluster.running and not obs.cluster_active
    assert decide(obs) is None


def test_no_engine_means_no_cluster(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    assert inspect_cluster("nemoclaw") is None


def test_the_preflight_reads_the_cluster_container_without_the_sdk_and_sees_what_it_sees(
        fake_openshell, gw, cluster, unique, docker_client, monkeypatch):
    """engine_get.py asks the engine's Unix socket directly (no docker SDK import in a refused
    run); its answer is the SDK's `inspect_container`, and any other DOCKER_HOST goes to the SDK."""
    from orchestrator.adapters import engine_get

    c = cluster(f"nemoclaw-cluster:0.0.36-raw-{unique}", fake_openshell.port)
    raw = engine_get.get_json(f"/containers/{c.name}/json", timeout=10)
    sdk = docker_client.api.inspect_container(c.name)
    assert raw["Id"] == sdk["Id"] and raw["Config"]["Image"] == sdk["Config"]["Image"]
    assert raw["HostConfig"]["PortBindings"] == sdk["HostConfig"]["PortBindings"]
    assert engine_get.get_json(f"/containers/openshell-cluster-absent-{unique}/json", timeout=10) is None
    assert engine_get.get_json("/containers/x/json", timeout=1, env={"DOCKER_HOST": "tcp://127.0.0.1:2375"}) is engine_get.SDK
    assert engine_get.get_json("/containers/x/json", timeout=1, env={"DOCKER_HOST": "unix:///nonexistent.sock"}) is None
