"""Sandbox lifecycle through OpenShell, end to end on both release lines the stand-in has
(0.0.116, the one NemoClaw pins, and 0.1.5 with its workload + supervisor pair), against the
real Docker engine (docs/reference/sandbox-lifecycle.md):

* a `Stopped` and an `Error` sandbox are backed up from their stopped containers: no Docker
  start (or stop, kill, restart, remove, pause) of any managed container goes out of the
  program, their containers' StartedAt/FinishedAt are unchanged and their phases too;
* `upgrade-sandboxes --yes` rebuilds stale stopped and failed sandboxes (classified without being
  started, by the registry or else the image's label); the Stopped one ends `Stopped` according to
  `openshell sandbox get` (NemoClaw #12173), the Error one runs (#12305), files kept in both;
* a rebuild killed between its create and its stop is finished by the next run, Stopped;
* a start record left by an older release's killed backup is finished through `openshell
  sandbox stop`.

"Which Docker calls did the program make" is read from a recording proxy in front of the
engine's socket that only the `nemoclaw` process talks to (tests/support/docker_proxy.py); the
stand-in's gateway, which is OpenShell, talks to the engine directly.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
import uuid
from typing import Any

import pytest

from nemoclaw_sim.images import ensure_agent_image
from orchestrator.kernel.owner import Owner
from tests.support.docker_proxy import DockerProxy
from tests.support.sim_helpers import strip
from tests.support.simenv import SimEnv

pytestmark = pytest.mark.docker

OLD, NEW = "2026.3.11", "2026.5.22"
STATE = ".openclaw/workspace/notes.txt"
KILL_ENV = "NEMOCLAW_TEST_KILL_AT"
LIFECYCLE_VERBS = {"start", "stop", "kill", "restart", "remove"}


@pytest.fixture(scope="module", params=["0.0.116", "0.1.5"])
def line(request, tmp_path_factory, docker_client):
    """One simulated host per release line for the whole module (a gateway, no sandboxes yet)."""
    sim = SimEnv((tmp_path_factory.mktemp(f"lifecycle-{request.param}") / "home").resolve())
    sim.home.mkdir()
    sim.up(sandboxes=0, cli=request.param, gateway=request.param, agent_version=OLD)
    ensure_agent_image(docker_client, NEW)
    try:
        yield sim
    finally:
        sim.down()


class Host:
    def __init__(self, sim: SimEnv, docker_client: Any) -> None:
        self.sim, self.docker = sim, docker_client
        self.names: list[str] = []

    @property
    def split(self) -> bool:
        return self.sim.deployment.gateway_version.startswith("0.1.")

    def add(self, how: str | None = None, version: str = OLD) -> str:
        """A registered sandbox holding a personal file; stopped `how` ("openshell": Stopped;
        "docker": a bare stop, Error), or running when how is None."""
        name = f"l{uuid.uuid4().hex[:8]}"
        self.sim.add_sandbox(name, agent_version=version)
        self.names.append(name)
        self.workload(name).exec_run(["sh", "-c", f"mkdir -p $HOME/.openclaw/workspace && echo notes of {name} > "
                                                  f"$HOME/{STATE}"], user="0")
        if how:
            self.sim.stop_sandbox(name, how=how)
        return name

    def remove_all(self) -> None:
        for name in self.names:
            self.sim.openshell("sandbox", "delete", name)
        reg = self.sim.registry()
        reg["sandboxes"] = {k: v for k, v in reg["sandboxes"].items() if k not in self.names}
        self.sim.paths.registry_file.write_text(json.dumps(reg, indent=2))

    def containers(self, name: str) -> list[Any]:
        return self.docker.containers.list(all=True, filters={"label": [
            f"openshell.ai/sandbox-name={name}", f"nemoclaw-sim/deployment={self.sim.deployment.deployment_id}"]})

    def workload(self, name: str) -> Any:
        [c] = [c for c in self.containers(name) if c.labels.get("openshell.ai/isolation-role", "sandbox") == "sandbox"]
        return c

    def times(self, name: str) -> dict[str, tuple[str, str, str]]:
        """container id -> (state, StartedAt, FinishedAt), for every container of the sandbox."""
        return {c.id: (c.attrs["State"]["Status"], c.attrs["State"]["StartedAt"], c.attrs["State"]["FinishedAt"])
                for c in self.containers(name)}

    def phase(self, name: str) -> str:
        res = self.sim.openshell("sandbox", "get", name)
        assert res.returncode == 0, res.stderr
        return re.search(r"^\s*Phase:\s*(\S+)", strip(res.stdout), re.M).group(1)

    def notes(self, name: str) -> str:
        """The personal file, read through the engine's archive of the (possibly stopped) workload."""
        c = self.workload(name)
        home = c.attrs["Config"]["WorkingDir"] or "/sandbox"
        stream, _ = c.get_archive(f"{home}/{STATE}")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            [member] = tar.getmembers()
            return tar.extractfile(member).read().decode()

    def nemoclaw(self, *args: str, proxy: DockerProxy | None = None, env: dict[str, str] | None = None,
                 timeout: float = 600) -> subprocess.CompletedProcess[str]:
        full = {**self.sim.env, **(env or {})}
        if proxy is not None:
            full["DOCKER_HOST"] = proxy.docker_host
        exe = shutil.which("nemoclaw", path=full["PATH"])
        return subprocess.run([exe, *args], env=full, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)


@pytest.fixture
def host(line, docker_client):
    h = Host(line, docker_client)
    try:
        yield h
    finally:
        h.remove_all()


def lifecycle_calls(proxy: DockerProxy) -> list[tuple[str, str, str]]:
    return [call for call in proxy.container_calls() if call[0] in LIFECYCLE_VERBS]


def test_stopped_and_error_sandboxes_are_backed_up_without_being_started(host):
    stopped, failed = host.add("openshell"), host.add("docker")
    assert (host.phase(stopped), host.phase(failed)) == ("Stopped", "Error")
    before = {n: host.times(n) for n in (stopped, failed)}
    with DockerProxy() as proxy:
        res = host.nemoclaw("backup-all", proxy=proxy)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    for name, phase in ((stopped, "Stopped"), (failed, "Error")):
        assert f"  Backing up '{name}' from its stopped container (phase {phase})..." in lines
        i = next(i for i, ln in enumerate(lines) if ln.startswith(f"  ✓ {name}: "))
        assert lines[i + 1] == f"    Read from its stopped container (phase {phase}); it was not started."
        assert host.phase(name) == phase
    # Not started, not stopped again: the engine's own record of every container is unchanged.
    assert {n: host.times(n) for n in (stopped, failed)} == before
    assert lifecycle_calls(proxy) == []
    # Nothing frozen either: there was nothing running to freeze.
    touched = {c.id for n in (stopped, failed) for c in host.containers(n)} | {
        c.name for n in (stopped, failed) for c in host.containers(n)}
    assert [call for call in proxy.container_calls() if call[1] in touched] == []
    assert any(path.endswith("/archive") or "/archive?" in path for _, path in proxy.requests)  # it did read them
    for name in (stopped, failed):
        [backup] = [p for p in (host.sim.home / ".nemoclaw" / "rebuild-backups" / name).iterdir() if not p.name.startswith(".")]
        assert (backup / STATE).read_text() == f"notes of {name}\n"
    doc = json.loads(host.nemoclaw("backup-all", "--json").stdout)
    assert {b["sandbox"]: b["phase"] for b in doc["summary"]["backed_up"]} == {stopped: "Stopped", failed: "Error"}


def test_upgrade_yes_rebuilds_stale_stopped_and_error_sandboxes_through_openshell(host):
    stopped, failed = host.add("openshell"), host.add("docker")
    # No recorded version for the failed one: it is judged by its image's label, not started.
    reg = host.sim.registry()
    reg["sandboxes"][failed].pop("agentVersion")
    host.sim.paths.registry_file.write_text(json.dumps(reg, indent=2))
    before = {n: host.times(n) for n in (stopped, failed)}
    check = host.nemoclaw("upgrade-sandboxes", "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"    {stopped}  v{OLD} → v{NEW}  (stopped)" in check.stdout.splitlines()
    assert f"    {failed}  v{OLD} → v{NEW}  (stopped; phase Error)" in check.stdout.splitlines()
    assert {n: host.times(n) for n in (stopped, failed)} == before

    with DockerProxy() as proxy:
        res = host.nemoclaw("upgrade-sandboxes", "--yes", proxy=proxy)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Skipping" not in out and "start them first" not in out
    assert f"  Sandbox '{failed}' is in phase Error: rebuilding it from a backup of its stopped container, without " \
           "starting it; the rebuilt sandbox runs." in res.stdout.splitlines()
    assert f"  Returned '{stopped}' to Stopped through OpenShell, as it was before the rebuild." in res.stdout.splitlines()
    assert "  ✓ 2 sandbox(es) rebuilt." in res.stdout.splitlines()
    assert lifecycle_calls(proxy) == []  # create, delete and stop went through `openshell`
    assert host.phase(stopped) == "Stopped" and {s for s, _, _ in host.times(stopped).values()} == {"exited"}
    assert host.phase(failed) == "Ready"
    for name in (stopped, failed):
        assert host.workload(name).attrs["Config"]["Image"].endswith(f":{NEW}")
        assert host.notes(name) == f"notes of {name}\n"
        assert host.sim.registry()["sandboxes"][name]["agentVersion"] == NEW
    # Nothing left to do; the Stopped one stays Stopped.
    again = host.nemoclaw("upgrade-sandboxes", "--check")
    assert again.returncode == 0 and "  All sandboxes are up to date." in again.stdout, again.stdout + again.stderr


@pytest.mark.parametrize("point", ["rebuild-sandbox:create:leave", "rebuild-sandbox:stop:enter"])
def test_a_rebuild_killed_between_create_and_stop_ends_stopped(host, point):
    stopped = host.add("openshell")
    res = host.nemoclaw("rebuild-sandbox", stopped, env={KILL_ENV: point})
    assert res.returncode == -9, res.stdout + res.stderr
    assert host.phase(stopped) == "Ready"  # the new sandbox runs: the kill came before its stop
    with DockerProxy() as proxy:
        again = host.nemoclaw("upgrade-sandboxes", "--yes", proxy=proxy)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "  Resuming interrupted run " in again.stdout
    assert lifecycle_calls(proxy) == []
    assert host.phase(stopped) == "Stopped"
    assert host.notes(stopped) == f"notes of {stopped}\n"
    assert host.workload(stopped).attrs["Config"]["Image"].endswith(f":{NEW}")


def test_a_start_record_of_an_older_release_is_finished_through_openshell(host):
    """An older release started a stopped sandbox with a bare `docker start` for its backup and
    recorded it under rebuild-backups/.started/ first; killed before its stop, it left the
    sandbox running. The next run returns it to stopped through OpenShell, once."""
    name = host.add()  # running: as the older release's bare start left it
    c = host.workload(name)
    records = host.sim.home / ".nemoclaw" / "rebuild-backups" / ".started"
    records.mkdir(parents=True, exist_ok=True)
    dead = Owner.current("20261201T000000Z-dead").to_json() | {"pid": 2 ** 22 + 7, "proc_start": 1}
    (records / f"{c.id}.json").write_text(json.dumps({"sandbox": name, "container": c.name, "owner": dead}))
    with DockerProxy() as proxy:
        res = host.nemoclaw("backup-all", proxy=proxy)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (f"  Returned '{name}' to its stopped state through OpenShell (container {c.name}): interrupted run "
            "20261201T000000Z-dead had started it to back it up.") in res.stdout.splitlines()
    assert lifecycle_calls(proxy) == []
    assert host.phase(name) == "Stopped"
    assert list(records.glob("*.json")) == []
    # Backed up from its stopped container in the same run (the list comes after the return).
    assert f"  Backing up '{name}' from its stopped container (phase Stopped)..." in res.stdout.splitlines()
