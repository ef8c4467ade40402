"""Finding a sandbox's container on every Docker layout, and its data root, on the real engine."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.kernel.errors import StepError
from orchestrator.adapters.sandbox_containers import (
    agent_at_root,
    data_root,
    find_sandbox_container,
    root_from_workdir,
)
from orchestrator.kernel.paths import rebase
from orchestrator.adapters.agents.definitions import load_agent

pytestmark = pytest.mark.docker
IDLE = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 2147483647 & wait"]


@pytest.fixture
def make(docker_client, base_image):
    made = []

    def _make(name: str, labels: dict[str, str], image: str = base_image):
        c = docker_client.containers.create(image, command=IDLE, name=name, labels=labels, network_mode="none")
        c.start()
        made.append(c)
        return c

    yield _make
    for c in made:
        c.remove(force=True)


def _labels(name: str, sid: str, **extra: str) -> dict[str, str]:
    return {"openshell.ai/managed-by": "openshell", "openshell.ai/sandbox-id": sid, "openshell.ai/sandbox-name": name,
            "openshell.ai/sandbox-namespace": "default", **extra}


def test_workdir_rule():
    assert [root_from_workdir(w) for w in (None, "", "/", "/sandbox", "/sandbox/", "/work", "/home/agent/")] == [
        "/sandbox", "/sandbox", "/sandbox", "/sandbox", "/sandbox", "/work", "/home/agent"]


def test_both_naming_schemes_are_found_by_label(make, unique):
    sid_old, sid_new = str(uuid.uuid4()), str(uuid.uuid4())
    old = make(f"openshell-{unique}-a-{sid_old}", _labels(f"{unique}-a", sid_old))
    new = make(f"openshell-default--{unique}-b-{sid_new}",
               _labels(f"{unique}-b", sid_new, **{"openshell.ai/sandbox-workspace": "default"}))
    assert find_sandbox_container(f"{unique}-a", sandbox_id_=sid_old).id == old.id
    assert find_sandbox_container(f"{unique}-b", sandbox_id_=sid_new).id == new.id
    assert find_sandbox_container(f"{unique}-b", ask_gateway=False, workspace="default").id == new.id


def test_workspace_narrows_a_name_search(make, unique):
    name = f"{unique}-w"
    a = make(f"openshell-default--{name}-1", _labels(name, str(uuid.uuid4()), **{"openshell.ai/sandbox-workspace": "default"}))
    make(f"openshell-team--{name}-2", _labels(name, str(uuid.uuid4()), **{"openshell.ai/sandbox-workspace": "team"}))
    with pytest.raises(StepError, match="several containers"):
        find_sandbox_container(name, ask_gateway=False)
    assert find_sandbox_container(name, ask_gateway=False, workspace="default").id == a.id


def test_a_01x_pair_yields_the_workload_never_the_supervisor(make, unique):
    sid, name = str(uuid.uuid4()), f"{unique}-p"
    ws = {"openshell.ai/sandbox-workspace": "default"}
    # The supervisor is created first and its name sorts first: neither may decide.
    make(f"openshell-supervisor-{sid}", _labels(name, sid, **ws, **{"openshell.io/isolation-role": "supervisor"}))
    work = make(f"openshell-default--{name}-{sid}", _labels(name, sid, **ws, **{"openshell.io/isolation-role": "sandbox"}))
    assert find_sandbox_container(name, sandbox_id_=sid).id == work.id
    assert find_sandbox_container(name, ask_gateway=False).id == work.id


def test_data_root_from_the_image_workdir(make, unique, docker_client):
    from nemoclaw_sim.images import ensure_agent_image

    image = ensure_agent_image(docker_client, "2026.5.22", "/work")
    sid = str(uuid.uuid4())
    c = make(f"openshell-{unique}-r-{sid}", _labels(f"{unique}-r", sid), image=image)
    plain = make(f"openshell-{unique}-s-{sid}", _labels(f"{unique}-s", sid), image=ensure_agent_image(docker_client))
    agent = load_agent("openclaw")
    assert data_root(c) == "/work" and data_root(plain) == "/sandbox"
    assert agent_at_root(agent, c).dir == "/work/.openclaw" and agent_at_root(agent, plain).dir == "/sandbox/.openclaw"
    # Manifests keep the canonical directory; a restore moves it under the target's own root.
    assert rebase(agent.dir, data_root(c)) == "/work/.openclaw" and rebase(agent.dir, data_root(plain)) == agent.dir
