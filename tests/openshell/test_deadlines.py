"""Every `openshell` call has a deadline (orchestrator/adapters/deadlines.py): a hung CLI gives the
standard "could not check" answer, and the hung program and everything it started are ended.

Real hanging programs: the fake `openshell` of tests/support/fakes.py, told to hang on one
command, hangs in a child (`sleep`) it waits on, the way a stuck CLI holding our pipes would.
The bound is set small through NEMOCLAW_OPENSHELL_TIMEOUT; the test-side timeouts are generous
(they only keep a broken build from hanging the suite), nothing here times the run.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from orchestrator.adapters import deadlines
from orchestrator.adapters.openshell.cli import run_bounded

from tests.support.cli import program
from tests.support.fakes import write_exec

HUNG_LIST = ("  Could not check: `openshell sandbox list` did not answer within 1 s (the OpenShell CLI or its gateway "
             "hangs); make sure the gateway process is running and answers (`nemoclaw gateway check`), then rerun.")
HUNG_STATUS = HUNG_LIST.replace("openshell sandbox list", "openshell status")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait is missing


def _register(home: Path, *names: str) -> None:
    (home / ".nemoclaw").mkdir(exist_ok=True)
    rows = {n: {"name": n, "agent": "openclaw"} for n in names}
    (home / ".nemoclaw" / "sandboxes.json").write_text(json.dumps({"sandboxes": rows}))


def _env(home: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(("HOME", "PATH", "DOCKER_HOST", "NEMOCLAW_"))} | {
        deadlines.TIMEOUT_ENV: "1"}


def test_the_bound_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(deadlines.TIMEOUT_ENV, raising=False)
    assert (deadlines.probe(), deadlines.operation()) == (15.0, 30.0)
    monkeypatch.setenv(deadlines.TIMEOUT_ENV, "2.5")
    assert (deadlines.probe(), deadlines.operation()) == (2.5, 5.0)
    for bad in ("0", "-3", "soon", "1e9"):
        monkeypatch.setenv(deadlines.TIMEOUT_ENV, bad)
        assert deadlines.probe() == 15.0


def test_a_hung_program_and_the_child_it_waits_on_are_killed(tmp_path):
    pids = tmp_path / "pids"
    hung = write_exec(tmp_path / "hung", f'#!/bin/bash\necho started\nsleep 600 & echo "$$ $!" > {pids}\nwait\n')
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.update(r=run_bounded([str(hung)], timeout=1)), daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "run_bounded did not return"
    status, out, _err = result["r"]  # type: ignore[misc]
    assert status is None and out == b"started\n"
    shell, sleeper = (int(p) for p in pids.read_text().split())
    assert not _alive(shell) and not _alive(sleeper)


def test_an_interrupted_call_kills_the_group_too(tmp_path):
    """Ctrl-C (here a KeyboardInterrupt raised by a real SIGALRM's handler) while a call is
    hung: the call's process group is ended before the interrupt goes on."""
    import signal

    import pytest

    pids = tmp_path / "pids"
    hung = write_exec(tmp_path / "hung", f'#!/bin/bash\nsleep 600 & echo "$$ $!" > {pids}\nwait\n')

    def interrupt(signum, frame):  # noqa: ANN001
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.alarm(1)
        with pytest.raises(KeyboardInterrupt):
            run_bounded([str(hung)], timeout=120)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    shell, sleeper = (int(p) for p in pids.read_text().split())
    assert not _alive(shell) and not _alive(sleeper)


def test_backup_all_with_a_hung_sandbox_list_could_not_check(fake_openshell, home):
    """The probe's finding: `openshell sandbox list` hanging made backup-all wait 400 s."""
    _register(home, "alpha")
    fake_openshell.hang("sandbox list")
    res = program("backup-all", env=_env(home), timeout=120)
    assert res.returncode == 1, res.stderr
    assert HUNG_LIST in res.stderr.splitlines()
    assert "Traceback" not in res.stderr and "Skipping" not in res.stdout
    assert not (home / ".nemoclaw" / "rebuild-backups" / "alpha").exists()
    assert not fake_openshell.called("gateway select")  # a hung gateway is not "down": no recovery
    pids = fake_openshell.hung_pids()
    assert pids and not [p for p in pids if _alive(p)]


def test_check_with_a_hung_sandbox_list_could_not_check(fake_openshell, home):
    _register(home, "alpha")
    fake_openshell.hang("sandbox list")
    res = program("upgrade-sandboxes", "--check", env=_env(home), timeout=120)
    assert res.returncode == 1, res.stderr
    assert HUNG_LIST in res.stderr.splitlines()
    assert "up to date" not in res.stdout
    pids = fake_openshell.hung_pids()
    assert pids and not [p for p in pids if _alive(p)]


def test_a_hung_status_stops_backup_all_at_the_preflight(fake_openshell, home):
    """`openshell status` hangs (a gateway that accepts and never answers): the preflight says so
    at once, rather than go on to a list that would hang as long again."""
    _register(home, "alpha")
    fake_openshell.hang("status")
    res = program("backup-all", env=_env(home), timeout=120)
    assert res.returncode == 1, res.stderr
    assert HUNG_STATUS in res.stderr.splitlines()
    assert not fake_openshell.called("sandbox list")
    pids = fake_openshell.hung_pids()
    assert pids and not [p for p in pids if _alive(p)]


def test_gateway_check_names_what_hung(fake_openshell, home):
    fake_openshell.hang("status")
    res = program("gateway", "check", env=_env(home), timeout=120)
    assert res.returncode == 1
    assert ("  Could not check: `openshell status` did not answer within 1 s (the OpenShell CLI or its gateway "
            "hangs).") in res.stderr.splitlines()
    assert "Verdict: could not check" in res.stdout
