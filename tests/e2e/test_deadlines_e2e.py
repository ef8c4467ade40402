"""A frozen gateway (SIGSTOP: it accepts connections and never answers) against the stand-in on the
real Docker engine: `backup-all` and `upgrade-sandboxes --check` give the standard "could not
check" answer within the probe bound (NEMOCLAW_OPENSHELL_TIMEOUT, small here), exit 1, and leave
no `openshell` process behind. The probe's finding: they hung 400 s and more than 150 s.

The test-side timeout is generous; it only keeps a broken build from hanging the suite.
"""

from __future__ import annotations

import os
import signal
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
