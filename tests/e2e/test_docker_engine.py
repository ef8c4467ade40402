"""Proves the Docker engine the suite runs against really works: run a container, read a file
back through the Docker API."""

import io
import tarfile

import pytest

pytestmark = pytest.mark.docker


def test_container_file_round_trip(docker_client, base_image, unique):
    c = docker_client.containers.run(
        base_image,
        ["sh", "-c", f"echo hello-{unique} > /sandbox/greeting && sleep 60"],
        name=f"nemoclaw-test-{unique}",
        network_mode="none",
        detach=True,
    )
    try:
        for _ in range(50):
            rc, _ = c.exec_run(["test", "-s", "/sandbox/greeting"])
            if rc == 0:
                break
        stream, stat = c.get_archive("/sandbox/greeting")
        tar = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
        data = tar.extractfile("greeting").read()
        assert data == f"hello-{unique}\n".encode()
        assert stat["name"] == "greeting"
    finally:
        c.remove(force=True)
