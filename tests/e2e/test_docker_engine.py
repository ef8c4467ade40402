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


def test_an_engine_that_already_answers_is_not_ours_to_stop(docker_client):
    # The demo run beside a test run found the tests' private engine answering, took it for one
    # it had started (by its socket path) and stopped it at its end, under the running tests.
    import os
    import subprocess
    from pathlib import Path

    host = os.environ["DOCKER_HOST"]
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    if host.startswith("unix://") and host.endswith("/docker.sock") and host != "unix:///var/run/docker.sock":
        env["NEMOCLAW_TEST_DOCKER_DIR"] = str(Path(host[len("unix://"):]).parent)  # found by its socket
    else:
        env["DOCKER_HOST"] = host
    script = Path(__file__).resolve().parents[2] / "scripts" / "docker-engine.sh"
    out = subprocess.run(["bash", str(script), "start"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"export DOCKER_HOST={host}", "ENGINE_STARTED_HERE=0"]
    assert docker_client.ping()
