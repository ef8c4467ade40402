"""`upgrade-sandboxes --check` says what it could not check (issue 10, item 11).

With no Docker engine it cannot probe a running sandbox: it says so (and exits 1) instead of
telling the user to start a sandbox that runs. While another run holds the writer lock, a
sandbox that is not running may be mid-rebuild: the report says which run holds it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid

import pytest

from orchestrator.steps._kill_points import PAUSE_ENV, PAUSE_MARKER_ENV
from tests.e2e.test_upgrade_e2e import FLEET, NEW, OLD, names, nemoclaw  # noqa: F401 - names is a fixture

pytestmark = pytest.mark.docker


def shutil_which(sim, program: str) -> str:
    exe = shutil.which(program, path=sim.env["PATH"])
    assert exe, f"{program} is not on the simulated host's PATH"
    return exe


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_check_without_docker_names_the_reason_and_never_says_start_them(sim, names):
    a, b = names("a", "b")
    sim.add_sandbox(a, agent_version=OLD)
    sim.add_sandbox(b, agent_version=NEW, stopped=True)
    dead = "unix:///nonexistent/docker.sock"
    env = {**sim.env, "DOCKER_HOST": dead}
    res = subprocess.run([shutil_which(sim, "nemoclaw"), "upgrade-sandboxes", "--check"], env=env,
                         capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert f"    {a}  v? → v{NEW}  (running; could not probe: Cannot reach the Docker engine (DOCKER_HOST={dead}))" in lines
    assert "start them and rerun" not in res.stdout
    assert (f"  1 running sandbox(es) could not be version-checked: Cannot reach the Docker engine "
            f"(DOCKER_HOST={dead}). Fix that and rerun.") in res.stderr.splitlines()


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_check_during_another_run_says_that_run_holds_the_lock(sim, names, tmp_path):
    a, b = names("a", "b")
    sim.add_sandbox(a, agent_version=OLD)
    sim.add_sandbox(b, agent_version=OLD)
    marker = tmp_path / f"paused-{uuid.uuid4().hex[:6]}"
    other = subprocess.Popen([shutil_which(sim, "nemoclaw"), "backup-all", "--parallel", "1"],
                             env={**sim.env, PAUSE_ENV: f"archive:{b}", PAUSE_MARKER_ENV: str(marker)},
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert other.poll() is None and time.monotonic() < deadline, other.communicate()
            time.sleep(0.05)
        pid, run_id, _ = marker.read_text().split()
        sim.stop_sandbox(a)  # as a rebuild in progress leaves it between delete and create
        res = nemoclaw(sim, "upgrade-sandboxes", "--check")
        assert res.returncode == 1, res.stdout + res.stderr  # stale sandboxes: work to do (NemoClaw #10211)
        held = f"not running; run {run_id} (pid {pid}) holds the lock and may be rebuilding it"
        assert f"    {a}  v{OLD} → v{NEW}  ({held})" in res.stdout.splitlines()
        assert (f"  Another run ({run_id}, pid {pid}) holds the lock: sandboxes it is rebuilding may show as not "
                "running. Rerun --check when it has finished.") in res.stdout.splitlines()
        # b is frozen (Docker pause) by that backup while its state is read: said so, not "stopped".
        assert f"    {b}  v{OLD} → v{NEW}  (frozen by run {run_id} while it is backed up)" in res.stdout.splitlines()
    finally:
        other.send_signal(signal.SIGTERM)
        other.communicate(timeout=120)
