"""`nemoclaw gateway check` against the running stand-in: `ok` only for what was looked at.

With the gateway stopped, Docker unreachable, a corrupt runtime marker or a marker whose
endpoint answers nothing, the doctor cannot know the gateway's schema: the verdict is
`could not check`, with the reason, and the exit status is 1 (never `Verdict: ok`, exit 0).
"""

from __future__ import annotations

import json

import pytest

from tests.support.fakes import free_port

pytestmark = pytest.mark.docker


def _check(sim, *args: str, env: dict[str, str] | None = None):
    return sim.run(["nemoclaw", "gateway", "check", *args], env={**sim.env, **(env or {})})


@pytest.mark.parametrize("sim", [{"sandboxes": 0}], indirect=True)
def test_ok_only_when_everything_was_checked(sim):
    res = _check(sim)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "  Verdict: ok" in res.stdout.splitlines() and "Could not check" not in res.stderr

    res = _check(sim, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert res.returncode == 1, res.stdout
    assert "  Verdict: could not check" in res.stdout.splitlines()
    assert "Cluster image   unknown (Docker engine unreachable)" in res.stdout
    assert "  Could not check: the Docker engine at unix:///nonexistent/docker.sock does not answer" in res.stderr

    marker_file = sim.state_dir / "runtime.json"
    good = marker_file.read_text()
    try:
        marker_file.write_text(good[: len(good) // 2])  # torn
        res = _check(sim, "--json")
        assert res.returncode == 1
        doc = json.loads(res.stdout)
        assert doc["verdict"] == "could_not_check" and doc["drift"] is False
        assert any(f"the runtime marker {marker_file} is not a valid marker" in r for r in doc["could_not_check"])
        assert "Runtime marker  corrupt (not a valid marker)" in _check(sim).stdout

        marker = json.loads(good)
        marker["endpoint"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        marker_file.write_text(json.dumps(marker))
        res = _check(sim)
        assert res.returncode == 1, res.stdout
        assert f"  Could not check: the runtime marker's endpoint {marker['endpoint']} does not accept connections." in res.stderr
    finally:
        marker_file.write_text(good)
    assert _check(sim).returncode == 0

    sim.stop_gateway()
    res = _check(sim)
    assert res.returncode == 1, res.stdout
    assert "  Verdict: could not check" in res.stdout.splitlines() and "Verdict: ok" not in res.stdout
    assert "  Could not check: the gateway is not healthy" in res.stderr
