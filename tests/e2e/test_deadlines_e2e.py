"""A frozen gateway (SIGSTOP: it accepts connections and never answers) against the stand-in on the
real Docker engine: `backup-all` and `upgrade-sandboxes --check` give the standard "could not
check" answer within the probe bound (NEMOCLAW_OPENSHELL_TIMEOUT, small here), exit 1, and leave
no `openshell` process behind. The probe's finding: they hung 400 s and more than 150 s.

The test-side timeout is generous; it only keeps a broken build from hanging the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

SENTENCE = ("did not answer within 3 s (the OpenShell CLI or its gateway hangs); make sure the gateway process is "
            "running and answers (`nemoclaw gateway check`), then rerun.")


def _openshell_processes(sim) -> list[int]:
    """Live processes running this host's `openshell` CLI (the stand-in's is a Python script)."""
    exe = str(sim.home)
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(a.decode(errors="replace").startswith(exe) and a.endswith(b"/openshell") for a in argv):
            found.append(int(proc.name))
    return found


@pytest.fixture
def frozen(sim):
    pid = int(sim.marker()["pid"])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield sim
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("argv", [["backup-all"], ["upgrade-sandboxes", "--check"]], ids=["backup-all", "check"])
def test_a_frozen_gateway_could_not_check(frozen, argv):
    env = {**frozen.env, "NEMOCLAW_OPENSHELL_TIMEOUT": "3"}
    res = frozen.run(["nemoclaw", *argv], env=env, timeout=240)
    assert res.returncode == 1, res.stdout + res.stderr
    [line] = [ln for ln in res.stderr.splitlines() if ln.startswith("  Could not check: `openshell ")]
    assert line.endswith(SENTENCE), res.stderr
    assert "Traceback" not in res.stderr and "up to date" not in res.stdout and "✓" not in res.stdout
    assert not (frozen.home / ".nemoclaw" / "rebuild-backups").exists() or not any(
        p for p in (frozen.home / ".nemoclaw" / "rebuild-backups").glob("*/*") if not p.name.startswith("."))
    assert _openshell_processes(frozen) == []


@pytest.mark.parametrize("sim", [{"sandboxes": 1}], indirect=True)
def test_check_answers_beside_a_backup_that_is_reading_the_archive(sim, docker_client):
    """The probe's finding: `--check` beside a running backup stalled while the archive was read.
    Docker holds the container's lock while its archive streams (64 MiB here, so the stream
    fills the socket and stays open), and every inspect of it waits: the stand-in gateway's
    listing did (it now lists from Docker's container list, as a gateway's store would answer),
    and so would our own inspect and exec of that sandbox (never made for a sandbox a live run
    froze). The backup is held at the documented pause point with its stream open; the check
    must answer while it is still held: it does not wait for the writer."""
    from orchestrator.steps._kill_points import PAUSE_ENV, PAUSE_MARKER_ENV

    [name] = sim.registry()["sandboxes"]
    [c] = docker_client.containers.list(filters={"label": [f"openshell.ai/sandbox-name={name}",
                                                           f"nemoclaw-sim/deployment={sim.deployment.deployment_id}"]})
    assert c.exec_run(["sh", "-c", "head -c 67108864 /dev/urandom > /sandbox/.openclaw/workspace/big"],
                      user="0").exit_code == 0
    marker = sim.home / "paused.marker"
    writer = subprocess.Popen([shutil.which("nemoclaw", path=sim.env["PATH"]), "backup-all"],
                              env={**sim.env, PAUSE_ENV: f"archive:{name}", PAUSE_MARKER_ENV: str(marker)},
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert writer.poll() is None and time.monotonic() < deadline, writer.communicate()
            time.sleep(0.05)
        res = sim.run(["nemoclaw", "upgrade-sandboxes", "--check"], env={**sim.env, "NEMOCLAW_OPENSHELL_TIMEOUT": "600"},
                      timeout=240)
        assert marker.exists() and writer.poll() is None  # answered while the writer is still reading
        assert res.returncode == 0, res.stdout + res.stderr
        assert "  All sandboxes are up to date." in res.stdout.splitlines()
        assert "Could not check" not in res.stderr
    finally:
        marker.unlink(missing_ok=True)
        out, err = writer.communicate(timeout=240)
    assert writer.returncode == 0, out + err


@pytest.mark.parametrize("reader", ["head", "closed", "json"])
def test_a_closed_stdout_never_interrupts_backup_all(sim, reader):
    """The probe's finding: `nemoclaw backup-all | head` could kill the run mid-way (one sandbox's
    backup failed with BrokenPipeError, the commit state failed, exit 120). Here stdout's reader
    reads one line (`| head -1`) or none, then goes away: every sandbox is backed up and
    committed, the run finishes `done` and exits 0; stderr says the output was given up."""
    from orchestrator.engine.output import STDOUT_GONE

    argv = [shutil.which("nemoclaw", path=sim.env["PATH"]), "backup-all", *(["--json"] if reader == "json" else [])]
    proc = subprocess.Popen(argv, env=sim.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if reader == "head":
        assert proc.stdout.readline().startswith("  Backing up '")
    proc.stdout.close()
    _out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert err.splitlines().count(STDOUT_GONE) == 1, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
    backups = sim.home / ".nemoclaw" / "rebuild-backups"
    assert sorted(p.name for p in backups.iterdir() if not p.name.startswith(".")) == sorted(sim.registry()["sandboxes"])
    verified = sim.run(["nemoclaw", "backups", "verify"], timeout=240)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    [log] = (sim.home / ".nemoclaw" / "runs").glob("*.jsonl")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["terminal"] for e in events if e["event"] == "run_finished"] == ["done"]
    assert not [e for e in events if e["event"] == "step_failed"]


@pytest.mark.parametrize("sim", [{"sandboxes": 2}], indirect=True)
def test_a_deleted_sandbox_is_missing_for_check_too(sim, docker_client):
    """Registered, listed by the gateway in phase Error, its container deleted: `--check` said
    "All sandboxes are up to date." (exit 0) from the registry's version. It is missing, with
    upstream's line, and the check exits 1."""
    alpha, beta = sorted(sim.registry()["sandboxes"])
    [c] = docker_client.containers.list(filters={"label": [f"openshell.ai/sandbox-name={beta}",
                                                           f"nemoclaw-sim/deployment={sim.deployment.deployment_id}"]})
    c.remove(force=True)
    res = sim.run(["nemoclaw", "upgrade-sandboxes", "--check"], timeout=240)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert f"  1 recorded sandbox(es) were not found on their recorded gateway: {beta}." in lines
    assert "  All sandboxes are up to date." not in lines
    assert not [ln for ln in lines if beta in ln and ("stopped" in ln or "not running" in ln)]
