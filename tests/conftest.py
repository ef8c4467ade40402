"""Shared fixtures. Docker-dependent tests fail (never skip) when CI=true."""

from __future__ import annotations

import os
import sys
import uuid

import docker
import pytest

# Shared helpers at the top of tests/ (`from diagnosis_text import …`) stay importable; appended,
# so that site-packages' `openshell` SDK comes before any test directory of that name.
_TESTS = os.path.dirname(os.path.abspath(__file__))
if _TESTS not in sys.path:
    sys.path.append(_TESTS)


@pytest.fixture(scope="session")
def docker_client():
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
from tests.simenv import sim  # noqa: E402,F401 - the simulated OpenShell host fixture (tests/simenv.py)
