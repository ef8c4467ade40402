"""Fixtures for the off-host copy tests: a real restic repository (local path, or REST through
`rclone serve restic` on 127.0.0.1), with a recording `restic` wrapper on PATH."""

from __future__ import annotations

import pytest

from tests.support.restic_repo import RestServer, ResticSetup, make_setup


@pytest.fixture
def local_repo(tmp_path) -> ResticSetup:
    return make_setup(tmp_path)


@pytest.fixture
def rest_server(tmp_path):
    server = RestServer(tmp_path / "rest-data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rest_repo(tmp_path, rest_server) -> ResticSetup:
    return make_setup(tmp_path, location=rest_server.url)


@pytest.fixture(params=["local", "rest"])
def any_repo(request, tmp_path) -> ResticSetup:
    """Each test twice: a local path repository and a REST server on 127.0.0.1."""
    if request.param == "local":
        return make_setup(tmp_path)
    return make_setup(tmp_path, location=request.getfixturevalue("rest_server").url)
