"""Shared fixtures (helpers live in tests/support/). Docker-dependent tests fail (never skip)
when CI=true.

Fixtures: `docker_client`, `base_image`, `unique`; `sim` (a deployed stand-in host, SimEnv);
`home`, `fake_openshell`, `procs` (a scratch HOME with fake `openshell` programs, no Docker).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

from tests.support.fakes import FakeOpenShell, Procs, free_port
from tests.support.engine import Engine, Program

_DOCKER_ONLY = re.compile(r"^pytestmark = pytest\.mark\.docker$", re.MULTILINE)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With `-m "not docker"`, a test module marked docker as a whole (a module-level
    `pytestmark = pytest.mark.docker` line) holds only tests that expression deselects: it is
    not imported at all, rather than imported (and its asserts rewritten) to be deselected."""
    if (config.option.markexpr or "").strip() != "not docker":
        return None
    if not (collection_path.name.startswith("test_") and collection_path.suffix == ".py"):
        return None
    try:
        text = collection_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return True if _DOCKER_ONLY.search(text) else None



@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        msg = f"no Docker engine reachable at DOCKER_HOST={os.environ.get('DOCKER_HOST', '(default)')}: {exc}"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(msg)  # in CI a missing engine is a failure, never a skip
        pytest.skip(msg)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    from nemoclaw_sim.images import ensure_base_image

    return ensure_base_image(docker_client)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def sim(request, tmp_path, docker_client):
    """A running simulated host (SimEnv) in a fresh tmp home; torn down whatever the test did.

    Customise with an indirect parameter:
        @pytest.mark.parametrize("sim", [{"cli": "0.0.44", "gateway": "0.0.43", "sandboxes": 1}], indirect=True)
    """
    from tests.support.simenv import SimEnv

    options = dict(getattr(request, "param", None) or {})
    env = SimEnv((tmp_path / "home").resolve())
    env.home.mkdir()
    try:
        env.up(**options)
        yield env
    finally:
        if env.paths.deployment_file.exists():
            env.down()


@pytest.fixture
def procs():
    p = Procs()
    yield p
    p.stop_all()


@pytest.fixture
def home(tmp_path, monkeypatch, request) -> Path:
    """A scratch HOME with an empty bin dir first on PATH.

    Tests not marked `docker` get no Docker engine at all (= no cluster container), so a
    parallel test's `openshell-cluster-*` can never leak into them.
    """
    h = tmp_path / "home"
    (h / "bin").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.setenv("PATH", f"{h / 'bin'}:/usr/bin:/bin")
    if request.node.get_closest_marker("docker") is None:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setenv("NEMOCLAW_HEALTH_POLL_COUNT", "30")
    monkeypatch.setenv("NEMOCLAW_HEALTH_POLL_INTERVAL", "0.1")
    for var in (
        "NEMOCLAW_OPENSHELL_BIN", "NEMOCLAW_OPENSHELL_GATEWAY_BIN", "NEMOCLAW_OPENSHELL_GATEWAY_STATE_DIR",
        "NEMOCLAW_GATEWAY_PORT", "OPENSHELL_GATEWAY", "NEMOCLAW_INVOKED_AS", "NEMOCLAW_AGENT", "NO_COLOR",
    ):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    return h


@pytest.fixture
def fake_openshell(home, tmp_path, unique, monkeypatch):
    """`openshell 0.0.37` on PATH for gateway `nemoclaw`, on a free port."""
    port = free_port()
    monkeypatch.setenv("NEMOCLAW_GATEWAY_PORT", str(port))
    root = tmp_path / "fake"
    root.mkdir()
    return FakeOpenShell(root, home / "bin", "nemoclaw", port, "0.0.37")


@pytest.fixture
def engine(tmp_path, monkeypatch) -> Engine:
    """The engine's test workflows and steps, run in this process against a scratch HOME."""
    home = tmp_path / "home"
    home.mkdir()
    return Engine(home, monkeypatch)


@pytest.fixture
def program(engine) -> Program:
    """The real `nemoclaw` program with the same test workflows, steps and HOME as `engine`."""
    return Program(engine.home)
