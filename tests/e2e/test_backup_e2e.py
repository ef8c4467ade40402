"""End-to-end: `nemoclaw backup-all` and `nemoclaw backups list|verify|restore|prune` as a user
runs them, against the OpenShell stand-in and real sandbox containers on the real Docker engine.

One simulated host serves the whole module (bringing one up costs seconds on these machines):
three ready sandboxes, one stopped (behind the gateway's back: phase Error on this release) and
one hostile. Each test starts from an empty
`~/.nemoclaw` (no backups, lock or run logs) and registers the sandboxes it needs, so the
tests do not depend on each other's order. Sandbox names carry a random tag: other runs on
the same engine use their own containers with the same label scheme.

Exact points to kill a run at come from the documented test hook of orchestrator/steps/_kill_points.py
(NEMOCLAW_TEST_PAUSE_AT / NEMOCLAW_TEST_PAUSE_MARKER): the run stops there and says so in a
marker file; the test then kills the real process.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.agents.definitions import load_agent
from orchestrator.kernel.owner import Owner
from orchestrator.steps._kill_points import PAUSE_ENV, PAUSE_MARKER_ENV
from orchestrator.store import MANIFEST_NAME, load_manifest, verify
from tests.support.simenv import SimEnv

pytestmark = pytest.mark.docker

STATE = "/sandbox/.openclaw"
OPENCLAW_DIRS = ("agents extensions workspace skills hooks identity devices canvas cron memory telegram wechat "
                 "whatsapp credentials").split()
SKIP = ("  Skipping '{}' (not running; start the sandbox/container and rerun 'nemoclaw backup-all' so NemoClaw can "
        "capture a fresh snapshot)")
FROM_STOPPED = "  Backing up '{}' from its stopped container (phase Error)..."
NOT_STARTED = "    Read from its stopped container (phase Error); it was not started."
STRICT = ("  Strict pre-upgrade backup requires every registered sandbox to be backed up; {} sandbox(es) were "
          "skipped.")
SUMMARY = "  Pre-upgrade backup: {} backed up, {} failed, {} skipped"
SWEPT = "  Removed leftovers of 1 interrupted run"
EMPTY = "  No sandboxes registered. Nothing to back up."
MISSING = "  1 recorded sandbox(es) were not found on their recorded gateway: {}."


@dataclass
class Host:
    sim: SimEnv
    docker: Any
    a: str
    b: str
    c: str
    stopped: str
    hostile: str
    gone: str  # registered and listed by the gateway, but its container was removed
    outside: Path  # where the hostile sandbox's absolute symlink points on this host
    entries: dict[str, dict[str, Any]]  # registry entries as the stand-in wrote them

    @property
    def home(self) -> Path:
        return self.sim.home

    @property
    def nemoclaw_dir(self) -> Path:
        return self.home / ".nemoclaw"

    @property
    def backups(self) -> Path:
        return self.nemoclaw_dir / "rebuild-backups"

    @property
    def registry_file(self) -> Path:
        return self.nemoclaw_dir / "sandboxes.json"

    def register(self, *names: str) -> None:
        doc = {"sandboxes": {n: self.entries[n] for n in names}, "defaultSandbox": names[0] if names else None}
        self.registry_file.write_text(json.dumps(doc, indent=2))

    def nemoclaw(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.exe, *args], env={**self.sim.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    @property
    def exe(self) -> str:
        found = shutil.which("nemoclaw", path=self.sim.env["PATH"])
        assert found, "nemoclaw is not on the simulated host's PATH"
        return found

    def container(self, name: str) -> Any:
        [c] = self.docker.containers.list(all=True, filters={"label": f"openshell.ai/sandbox-name={name}"})
        return c

    def times(self, name: str) -> tuple[str, str, str]:
        """(state, StartedAt, FinishedAt) of the sandbox's container, as the engine records them."""
        state = self.container(name).attrs["State"]
        return state["Status"], state["StartedAt"], state["FinishedAt"]

    def status(self, name: str) -> str:
        """From the engine's container list, which (unlike an inspect) does not wait for the
        container's lock: the engine holds it while a backup's archive stream is open."""
        [row] = self.docker.api.containers(all=True, filters={"label": f"openshell.ai/sandbox-name={name}"})
        return "paused" if "(Paused)" in row["Status"] else row["State"]

    def sh(self, name: str, script: str) -> str:
        rc, out = self.container(name).exec_run(["sh", "-c", script], user="root")
        assert rc == 0, out.decode(errors="replace")
        return out.decode()

    def sandbox_sums(self, name: str) -> dict[str, str]:
        """sha256sum of every regular file under the agent's state dirs, computed in the container."""
        out = self.sh(name, f"cd {STATE} && for d in {' '.join(OPENCLAW_DIRS)}; do [ -d $d ] && find $d -type f; done "
                            "| xargs -r sha256sum")
        return {path: digest for digest, path in (line.split(None, 1) for line in out.splitlines())}

    def committed(self, name: str) -> list[Path]:
        return sorted(p for p in (self.backups / name).glob("*") if not p.name.startswith("."))

    def staged_runs(self) -> list[Path]:
        return sorted((self.backups / ".staging").glob("*"))


def remove_container(c: Any) -> None:
    """`docker rm -f`, again if the vfs driver is still busy with a concurrent read of it
    ("failed to remove root filesystem ... directory not empty": the engine's, not ours)."""
    import docker.errors

    for attempt in range(10):
        try:
            c.remove(force=True)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if "directory not empty" not in str(exc) or attempt == 9:
                raise
            time.sleep(0.5)


def tree_sums(root: Path) -> dict[str, str]:
    """sha256 of every regular file under a backup directory, read from disk (not the manifest)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink() and p.name != MANIFEST_NAME:
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def agent_sums(root: Path) -> dict[str, str]:
    """tree_sums of the agent's state dirs in a backup, relative to the agent's dir (what
    `Host.sandbox_sums` computes in the container), whatever the backup's scope."""
    m = load_manifest(root)
    sums = tree_sums(root)
    if m.scope == "home":
        sums = {k[len(".openclaw/"):]: v for k, v in sums.items() if k.startswith(".openclaw/")}
    return {k: v for k, v in sums.items() if k.split("/", 1)[0] in OPENCLAW_DIRS}


def assert_only_complete_backups(h: Host) -> dict[str, list[Path]]:
    """Every directory under rebuild-backups/<name>/ has a manifest that loads, verifies (every
    byte re-hashed) and lists exactly the files on disk with their hashes."""
    found: dict[str, list[Path]] = {}
    for sandbox_dir in sorted(p for p in h.backups.glob("*") if not p.name.startswith(".")):
        for d in sorted(sandbox_dir.iterdir()):
            if d.name.startswith("."):
                continue
            m = load_manifest(d)  # raises (fails the test) on a missing or partial manifest
            assert verify(d, m) is None, d
            assert {f.path: f.sha256 for f in m.files} == tree_sums(d), d
            found.setdefault(sandbox_dir.name, []).append(d)
    return found


@pytest.fixture(scope="module")
def host(tmp_path_factory, docker_client):
    base = tmp_path_factory.mktemp("backup-e2e").resolve()
    sim = SimEnv(base / "home")
    sim.home.mkdir()
    tag = uuid.uuid4().hex[:6]
    names = {k: f"bk{tag}-{k}" for k in ("a", "b", "c", "stopped", "hostile", "gone")}
    outside = base / "outside-target"
    try:
        sim.up(sandboxes=0)
        for key in ("a", "b", "c", "stopped", "hostile", "gone"):
            sim.add_sandbox(names[key])
        sim.stop_sandbox(names["stopped"])
        [gone] = docker_client.containers.list(all=True, filters={"label": f"openshell.ai/sandbox-name={names['gone']}"})
        gone.remove(force=True)
        h = Host(sim=sim, docker=docker_client, outside=outside, entries=sim.registry()["sandboxes"], **names)
        # Links leaving the backup (absolute, and relative through `..`), a device node (mknod as
        # root) and a FIFO: recorded / skipped, never followed. What fails this sandbox is a
        # state directory that is not a directory (`memory` is a plain file).
        h.sh(h.hostile, f"set -e; cd {STATE}; mkdir -p workspace; rm -rf memory; echo x > memory; "
                        f"ln -s {outside} workspace/escape-abs; ln -s ../../../../../../../../{outside} workspace/escape-rel; "
                        "mknod workspace/dev-null c 1 3; mkfifo workspace/fifo")
        yield h
    finally:
        if sim.paths.deployment_file.exists():
            sim.down()


@pytest.fixture
def h(host: Host) -> Host:
    """The module's host with an empty ~/.nemoclaw holding only a registry of a, b, c, stopped."""
    for p in host.nemoclaw_dir.iterdir() if host.nemoclaw_dir.exists() else []:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    host.nemoclaw_dir.mkdir(exist_ok=True)
    host.register(host.a, host.b, host.c, host.stopped)
    for name in (host.a, host.b, host.c, host.hostile):
        c = host.container(name)
        c.reload()
        if c.status == "paused":  # a failed test must not spoil the next one
            c.unpause()
    stopped = host.container(host.stopped)
    stopped.reload()
    if stopped.status != "exited":
        stopped.stop(timeout=10)
    return host


class Paused:
    """A `nemoclaw backup-all` process stopped at a NEMOCLAW_TEST_PAUSE_AT point."""

    def __init__(self, h: Host, point: str, sandbox: str, *args: str) -> None:
        self.marker = h.home / f"paused-{uuid.uuid4().hex[:8]}"
        env = {**h.sim.env, PAUSE_ENV: f"{point}:{sandbox}", PAUSE_MARKER_ENV: str(self.marker)}
        self.proc = subprocess.Popen([h.exe, "backup-all", *args], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not self.marker.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                out, err = self.proc.communicate()
                pytest.fail(f"backup-all never reached {point}:{sandbox} (exit {self.proc.returncode})\n{out}\n{err}")
            time.sleep(0.05)
        pid, self.run_id, where = self.marker.read_text().split()
        assert int(pid) == self.proc.pid and where == f"{point}:{sandbox}"

    def kill(self, sig: int) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=120)
        return self.proc.returncode, out, err


# --- backup-all --------------------------------------------------------------------------------


def test_three_ready_one_stopped_commits_four_backups_equal_to_the_containers(h):
    before = h.times(h.stopped)
    res = h.nemoclaw("backup-all")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    # NemoClaw #6500, #11909: the stopped sandbox is read from its stopped container, never started.
    assert FROM_STOPPED.format(h.stopped) in lines
    assert lines[lines.index(next(ln for ln in lines if ln.startswith(f"  ✓ {h.stopped}: "))) + 1] == NOT_STARTED
    assert h.times(h.stopped) == before and before[0] == "exited"
    assert not any(line.startswith("  Skipping") for line in lines), res.stdout
    assert SUMMARY.format(4, 0, 0) in lines
    assert f"  Backups stored in: {h.backups}" in lines  # absolute, as upstream prints it now
    assert "Backup complete" not in res.stdout  # upstream asserts its absence
    found = assert_only_complete_backups(h)
    assert sorted(found) == sorted([h.a, h.b, h.c, h.stopped])
    for name in (h.a, h.b, h.c):
        [d] = found[name]
        assert f"  ✓ {name}: " in res.stdout and f"→ {d}" in res.stdout
        sums = h.sandbox_sums(name)
        assert len(sums) > 10
        assert agent_sums(d) == sums  # the files on disk hash equal to the container's files
    # The stopped sandbox holds the same image tree as c; its backup hashes equal to c's.
    assert tree_sums(found[h.stopped][0]) == tree_sums(found[h.c][0])
    assert h.staged_runs() == []  # staging is gone after a finished run

    listed = json.loads(h.nemoclaw("backups", "list", "--verify", "--json").stdout)
    assert sorted(r["sandbox"] for r in listed["backups"]) == sorted([h.a, h.b, h.c, h.stopped])
    assert all(r["verified"] for r in listed["backups"]) and listed["invalid"] == []


def test_a_deleted_sandbox_is_reported_missing_and_the_run_is_incomplete(h):
    """Registered, listed by the gateway (phase Error), its container deleted: the probe saw it
    called "not running" with exit 0. It is missing (never "not running" or "stopped"): named with
    upstream's line and what recreates it, and the run ends incomplete (exit 1); the others are
    backed up."""
    h.register(h.a, h.gone)
    res = h.nemoclaw("backup-all")
    assert res.returncode == 1, res.stdout + res.stderr
    lines, errors = res.stdout.splitlines(), res.stderr.splitlines()
    assert not [ln for ln in lines + errors if h.gone in ln and "not running" in ln]
    assert MISSING.format(h.gone) in errors
    assert (f"  ✗ {h.gone}: missing (the gateway lists it (phase Error) but its container is gone); no verified backup "
            f"was found in {h.backups / h.gone}.") in errors
    assert SUMMARY.format(1, 0, 1) in lines
    assert sorted(assert_only_complete_backups(h)) == [h.a]
    events = _run_events(h)
    assert [e["sandbox"] for e in events if e.get("event") == "sandbox_missing"] == [h.gone]
    assert [e["terminal"] for e in events if e.get("event") == "run_finished"] == ["incomplete"]
    # A sandbox the gateway does not list at all is missing too.
    nobody = "nobody-" + h.gone
    h.registry_file.write_text(json.dumps({"sandboxes": {h.a: h.entries[h.a], nobody: {**h.entries[h.gone], "name": nobody}},
                                           "defaultSandbox": h.a}))
    res = h.nemoclaw("backup-all")
    assert res.returncode == 1, res.stdout + res.stderr
    assert (f"  ✗ {nobody}: missing (the gateway does not list it); no verified backup was found in "
            f"{h.backups / nobody}.") in res.stderr.splitlines()


def test_a_stopped_sandbox_whose_backup_fails_is_left_as_it_was(h):
    # What fails it: its state is larger than the per-sandbox limit (the others' is not). Written
    # into the stopped container's layer through the engine (put_archive), which starts nothing.
    c = h.container(h.stopped)
    big = io.BytesIO()
    with tarfile.open(fileobj=big, mode="w") as tar:
        info = tarfile.TarInfo("big")
        info.size = 30_000_000
        tar.addfile(info, io.BytesIO(os.urandom(info.size)))  # random: a sparse file's holes do not count
    assert c.put_archive(f"{STATE}/workspace", big.getvalue())
    before = h.times(h.stopped)
    try:
        h.register(h.a, h.stopped)
        res = h.nemoclaw("backup-all", env={"NEMOCLAW_BACKUP_MAX_BYTES": "20000000"})
        assert res.returncode == 1, res.stdout + res.stderr
        assert FROM_STOPPED.format(h.stopped) in res.stdout.splitlines()
        assert any(line.startswith(f"  ✗ {h.stopped}: backup failed (") and "per-sandbox limit" in line
                   for line in res.stderr.splitlines()), res.stderr
        assert h.times(h.stopped) == before
        assert sorted(assert_only_complete_backups(h)) == [h.a]
    finally:
        c.start()  # test set-up only: the module's engine-side clean-up of the file it wrote
        h.sh(h.stopped, f"rm -f {STATE}/workspace/big")
        c.stop(timeout=10)


def test_a_stopped_sandbox_is_never_started_when_its_backup_is_interrupted(h):
    h.register(h.stopped)
    before = h.times(h.stopped)
    run = Paused(h, "archive", h.stopped, "--parallel", "1")
    assert h.status(h.stopped) == "exited"  # read while stopped
    code, _out, _err = run.kill(signal.SIGTERM)
    assert code == 128 + signal.SIGTERM
    assert h.times(h.stopped) == before
    assert assert_only_complete_backups(h) == {}
    # Killed outright, there is nothing to undo either: the next run just backs it up.
    run = Paused(h, "archive", h.stopped, "--parallel", "1")
    code, _out, _err = run.kill(signal.SIGKILL)
    assert code == -signal.SIGKILL
    res = h.nemoclaw("backup-all")
    assert res.returncode == 0, res.stderr
    assert sorted(assert_only_complete_backups(h)) == [h.stopped]
    assert h.times(h.stopped) == before
    assert not (h.backups / ".started").exists()


def test_a_start_record_of_an_older_release_that_openshell_cannot_stop_is_reported_once(h):
    """An older release's killed backup left sandbox a started (its record under .started/);
    this OpenShell (0.0.44) has no `sandbox stop`, and a bare `docker stop` would leave the
    sandbox in phase Error: one line says so and what to do, the record goes, a stays running
    (tests/e2e/test_lifecycle_e2e.py has the release that can stop it)."""
    h.register(h.a)
    c = h.container(h.a)
    records = h.backups / ".started"
    records.mkdir(parents=True)
    dead = Owner.current("20261201T000000Z-dead").to_json() | {"pid": 2 ** 22 + 7, "proc_start": 1}
    (records / f"{c.id}.json").write_text(json.dumps({"sandbox": h.a, "container": c.name, "owner": dead}))
    before = h.times(h.a)
    res = h.nemoclaw("backup-all")
    assert res.returncode == 0, res.stdout + res.stderr
    [line] = [ln for ln in res.stderr.splitlines() if ln.startswith(f"  '{h.a}' (container {c.name}) still runs: ")]
    assert ("interrupted run 20261201T000000Z-dead had started it to back it up, and `openshell sandbox stop "
            f"{h.a}` failed (") in line and line.endswith("stop it through OpenShell if it should be stopped.")
    assert list(records.glob("*.json")) == [] and h.times(h.a) == before
    assert sorted(assert_only_complete_backups(h)) == [h.a]
    again = h.nemoclaw("backup-all")
    assert again.returncode == 0 and "still runs" not in again.stderr


def test_strict_through_the_installer_variable_exits_1_on_a_skip_and_commits_nothing(h):
    strict = {"NEMOCLAW_REQUIRE_ALL_SANDBOX_BACKUPS": "1"}
    h.register(h.a, h.gone)
    res = h.nemoclaw("backup-all", env=strict)
    assert res.returncode == 1, res.stdout + res.stderr
    assert STRICT.format(1) in res.stderr.splitlines()
    assert MISSING.format(h.gone) in res.stderr.splitlines()
    assert assert_only_complete_backups(h) == {}
    # NemoClaw #6500: a stopped sandbox no longer fails a strict pre-upgrade backup.
    h.register(h.a, h.stopped)
    res = h.nemoclaw("backup-all", env=strict)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(assert_only_complete_backups(h)) == sorted([h.a, h.stopped])
    assert h.status(h.stopped) == "exited"


def test_backup_change_restore_gives_back_the_backed_up_tree(h):
    h.register(h.a)
    assert h.nemoclaw("backup-all").returncode == 0
    [backup] = h.committed(h.a)
    before = h.sandbox_sums(h.a)
    assert agent_sums(backup) == before
    h.sh(h.a, f"cd {STATE} && echo changed > workspace/SOUL.md && rm -rf skills && echo extra > workspace/extra.txt "
              "&& head -c 3000 /dev/urandom > agents/main/sessions/sessions.json")
    assert h.sandbox_sums(h.a) != before

    res = h.nemoclaw("backups", "restore", h.a)
    assert res.returncode == 0, res.stderr
    assert f"  ✓ Restored '{h.a}' from {backup.name};" in res.stdout
    assert h.sandbox_sums(h.a) == agent_sums(backup)  # the sandbox tree hashes equal to the backup
    assert "extra.txt" not in h.sh(h.a, f"ls {STATE}/workspace")


def test_restore_into_a_stopped_sandbox_says_so_and_changes_nothing(h):
    h.register(h.stopped)
    assert h.nemoclaw("backup-all").returncode == 0  # read from its stopped container
    before = h.container(h.stopped).attrs["State"]["FinishedAt"]
    res = h.nemoclaw("backups", "restore", h.stopped)
    assert res.returncode == 1
    c = h.container(h.stopped)
    assert res.stderr.strip() == (f"Cannot restore '{h.stopped}': its container {c.name} is exited; "
                                  f"start the sandbox, then rerun: nemoclaw backups restore {h.stopped}")
    assert c.status == "exited" and c.attrs["State"]["FinishedAt"] == before  # never started


@pytest.mark.parametrize("freeze", [True, False], ids=["frozen", "no-freeze"])
def test_hostile_sandbox_fails_alone_and_nothing_leaves_staging(h, freeze):
    h.register(h.a, h.hostile, h.b)
    listing = h.sh(h.hostile, f"ls -l {STATE}/workspace {STATE}/memory")
    assert "crw" in listing and "prw" in listing and "escape-abs ->" in listing  # what the sandbox serves
    # The agent scope: its declared state dir `memory` is a plain file, which fails it. (A whole
    # home has no declared dirs; what Docker serves from a real sandbox is recorded or skipped,
    # test_links_hard_links_setuid_and_special_files_back_up_and_restore.)
    res = h.nemoclaw("backup-all", "--scope", "agent", *([] if freeze else ["--no-freeze"]))
    assert res.returncode == 1, res.stdout + res.stderr
    [failed] = [line for line in res.stderr.splitlines() if line.startswith(f"  ✗ {h.hostile}: backup failed (")]
    # The reason the capture computed reaches the user: the path and why it failed.
    assert failed == f"  ✗ {h.hostile}: backup failed (memory ({STATE}/memory is not a directory))", failed
    assert SUMMARY.format(2, 1, 0) in res.stdout.splitlines()
    found = assert_only_complete_backups(h)
    assert sorted(found) == sorted([h.a, h.b])  # the others are committed
    assert not (h.backups / h.hostile).exists()
    assert not os.path.lexists(h.outside)  # nothing was written where the links point
    assert h.staged_runs() == []  # and what was staged is gone
    for name in (h.a, h.b, h.hostile):
        c = h.container(name)
        c.reload()
        assert c.status == "running" and not c.attrs["State"]["Paused"], name  # unpaused after a failure too


def test_links_hard_links_setuid_and_special_files_back_up_and_restore(h):
    """Record what a sandbox holds, refuse only what is dangerous (an ordinary Python venv is
    enough to need it): links of any target are kept as links and never followed here, a hard
    link becomes a second file, a setuid bit survives, FIFOs and device nodes are left out."""
    h.register(h.c)
    h.sh(h.c, f"set -e; cd {STATE}/workspace; mkdir -p venv/bin; ln -s /usr/bin/python3 venv/bin/python; "
              f"ln -s {h.outside} out; ln SOUL.md soul-hard; cp /bin/busybox tool; chmod 4755 tool; "
              "mkfifo fifo; mknod dev c 1 3")
    res = h.nemoclaw("backup-all")
    assert res.returncode == 0, res.stdout + res.stderr
    [backup] = h.committed(h.c)
    m = load_manifest(backup)
    assert m.scope == "home"  # the default: paths are relative to the home, /sandbox
    w = ".openclaw/workspace"
    links = {s.path: s.target for s in m.symlinks}
    assert links[f"{w}/venv/bin/python"] == "/usr/bin/python3" and links[f"{w}/out"] == str(h.outside)
    files = {f.path: f for f in m.files}
    assert files[f"{w}/soul-hard"].sha256 == files[f"{w}/SOUL.md"].sha256
    assert files[f"{w}/tool"].mode == 0o4755
    assert f"{w}/fifo" not in files and f"{w}/dev" not in files
    assert os.readlink(backup / w / "venv/bin/python") == "/usr/bin/python3"
    assert not os.path.lexists(h.outside)
    h.sh(h.c, f"rm -rf {STATE}/workspace")
    res = h.nemoclaw("backups", "restore", h.c)
    assert res.returncode == 0, res.stdout + res.stderr
    out = h.sh(h.c, f"cd {STATE}/workspace && readlink venv/bin/python && readlink out && stat -c '%a' tool")
    assert out.split() == ["/usr/bin/python3", str(h.outside), "4755"]


def test_corrupt_registry_is_a_clear_error_and_writes_nothing(h):
    h.registry_file.write_text('{"sandboxes": {"x": ')

    def snapshot() -> dict[str, tuple[int, float]]:
        return {str(p.relative_to(h.nemoclaw_dir)): (p.stat().st_size, p.stat().st_mtime)
                for p in h.nemoclaw_dir.rglob("*") if "runs" not in p.relative_to(h.nemoclaw_dir).parts}

    before = snapshot()
    res = h.nemoclaw("backup-all")
    assert res.returncode == 2
    assert f"Cannot read the sandbox registry {h.registry_file}: not valid JSON" in res.stderr
    assert "Traceback" not in res.stderr and res.stdout.strip() == ""
    assert snapshot() == before  # only the run's own log may have been written
    assert not h.backups.exists()


def test_missing_registry_nothing_to_back_up(h):
    h.registry_file.unlink()
    res = h.nemoclaw("backup-all")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [EMPTY]
    assert not h.backups.exists()


def test_strict_commits_nothing_when_one_sandbox_fails(h):
    h.register(h.a, h.b, h.hostile)
    res = h.nemoclaw("backup-all", "--strict", "--scope", "agent")  # agent scope: the hostile one fails
    assert res.returncode == 1
    assert f"  ✗ {h.hostile}: backup failed" in res.stderr
    assert "--strict: nothing was committed" in res.stderr
    assert assert_only_complete_backups(h) == {}
    assert h.staged_runs() == []
    # The same sandboxes without --strict: the two good ones are committed (so --strict made the difference).
    assert h.nemoclaw("backup-all", "--scope", "agent").returncode == 1
    assert sorted(assert_only_complete_backups(h)) == sorted([h.a, h.b])


def test_json_prints_a_machine_readable_summary_on_stdout(h):
    h.register(h.a, h.stopped, h.hostile, h.gone)
    res = h.nemoclaw("backup-all", "--json", "--scope", "agent")  # agent scope: the hostile one fails
    assert res.returncode == 1
    doc = json.loads(res.stdout)  # stdout is the JSON document and nothing else
    assert doc["workflow"] == "backup-all" and doc["exit_code"] == 1
    s = doc["summary"]
    backed, stopped = s["backed_up"]
    assert backed["sandbox"] == h.a and Path(backed["path"]) == h.committed(h.a)[0]
    assert backed["files"] == len(load_manifest(Path(backed["path"])).files) > 0
    assert backed["phase"] is None and backed["frozen_seconds"] is not None
    assert stopped["sandbox"] == h.stopped and stopped["phase"] == "Error" and stopped["frozen_seconds"] is None
    assert s["skipped"] == [{"sandbox": h.gone, "reason": "missing"}]
    assert [f["sandbox"] for f in s["failed"]] == [h.hostile]
    assert SUMMARY.format(2, 1, 1) not in res.stdout


# --- interrupted runs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "point, which, committed_before_kill",
    [
        ("archive", "b", []),  # during a sandbox's archive (its stream half read)
        ("after_commit", "a", ["a"]),  # between two commits
        ("before_commit", "b", ["a"]),  # right before a rename into place
    ],
)
def test_sigkill_leaves_only_complete_backups_and_next_run_sweeps(h, point, which, committed_before_kill):
    h.register(h.a, h.b, h.c)
    paused = Paused(h, point, getattr(h, which), "--parallel", "1")
    code, _out, _err = paused.kill(signal.SIGKILL)
    assert code == -signal.SIGKILL
    found = assert_only_complete_backups(h)
    assert sorted(found) == sorted(getattr(h, k) for k in committed_before_kill)
    [leftover] = h.staged_runs()  # the dead run's staging area, with what it had staged
    assert leftover.name == paused.run_id and any(p.is_dir() for p in leftover.iterdir())

    res = h.nemoclaw("backup-all")
    assert res.returncode == 0, res.stderr
    assert any(line.startswith(f"{SWEPT}: {paused.run_id} (") for line in res.stdout.splitlines()), res.stdout
    assert f"Broke stale lock of run {paused.run_id}" in res.stdout
    assert h.staged_runs() == []
    found = assert_only_complete_backups(h)
    assert sorted(found) == sorted([h.a, h.b, h.c])
    assert all(len(found[getattr(h, k)]) == 2 for k in committed_before_kill)


def test_second_run_is_refused_by_the_lock_and_sigterm_discards_staging(h):
    h.register(h.a, h.b)
    first = Paused(h, "archive", h.a)
    try:
        second = h.nemoclaw("backup-all")
        assert second.returncode == 75
        assert f"Another nemoclaw run is in progress: run {first.run_id}, pid {first.proc.pid}" in second.stderr
        assert h.nemoclaw("backups", "prune", "--keep", "0").returncode == 75  # a writer too
    finally:
        code, _out, err = first.kill(signal.SIGTERM)
    assert code == 128 + signal.SIGTERM
    # Interrupted, not finished: the next backup-all does the job again (issue 20).
    assert f"  Interrupted by SIGTERM: run {first.run_id} (backup-all, stopped in state 'snapshot' at " in err
    assert "its staged data was discarded and nothing partial was committed." in err
    assert assert_only_complete_backups(h) == {}
    assert h.staged_runs() == []
    assert not (h.nemoclaw_dir / "orchestrator.lock").exists()


def test_backup_freezes_while_reading_and_unfreezes_when_interrupted(h):
    h.register(h.a, h.b)
    run = Paused(h, "archive", h.a, "--parallel", "1")
    try:
        assert h.status(h.a) == "paused", "the backup did not freeze the container while reading it"
    finally:
        code, _out, _err = run.kill(signal.SIGTERM)
    assert code == 128 + signal.SIGTERM
    for name in (h.a, h.b):
        c = h.container(name)
        c.reload()
        assert c.status == "running" and not c.attrs["State"]["Paused"], name
    assert assert_only_complete_backups(h) == {}


def test_no_freeze_reads_the_sandbox_live(h):
    h.register(h.a)
    run = Paused(h, "archive", h.a, "--no-freeze", "--parallel", "1")
    try:
        assert h.status(h.a) == "running"
    finally:
        code, _out, _err = run.kill(signal.SIGTERM)
    assert code == 128 + signal.SIGTERM


WRITER = """
cd {d} && touch {d}/.writing && i=0
while [ -e {d}/.writing ]; do
  i=$((i+1))
  echo $i > aaa-first.tmp && mv aaa-first.tmp aaa-first
  echo $i > zzz-second.tmp && mv zzz-second.tmp zzz-second
done
"""


def test_every_frozen_backup_is_one_instant_of_a_live_writer(h):
    """A writer updates two files in a fixed order (first, then second) in a loop; at any one
    instant first == second or first == second + 1. The two files are far apart in the
    archive (the 2.5 MB of `workspace/projects` between them), so a live read is allowed not
    to see one instant; a frozen backup must, every time."""
    d = f"{STATE}/workspace"
    h.register(h.c)
    c = h.container(h.c)
    c.exec_run(["sh", "-c", WRITER.format(d=d)], user="root", detach=True)
    try:
        deadline = time.monotonic() + 30
        while "zzz-second" not in h.sh(h.c, f"ls {d}") and time.monotonic() < deadline:
            time.sleep(0.1)
        pairs = []
        for _ in range(3):
            res = h.nemoclaw("backup-all", "--json")
            assert res.returncode == 0, res.stderr
            [backed] = json.loads(res.stdout)["summary"]["backed_up"]
            assert backed["frozen_seconds"] is not None and backed["frozen_seconds"] > 0
            root = Path(backed["path"])
            m = load_manifest(root)
            prefix = ".openclaw/workspace" if m.scope == "home" else "workspace"
            first = int((root / prefix / "aaa-first").read_text())
            second = int((root / prefix / "zzz-second").read_text())
            pairs.append((first, second))
        assert all(f - s in (0, 1) for f, s in pairs), pairs
        assert len({f for f, _ in pairs}) == 3, pairs  # the writer ran on between the backups
        plain = h.nemoclaw("backup-all")
        assert plain.returncode == 0, plain.stderr
        assert any(re.fullmatch(r"    Frozen for \d+\.\d{3} s while its state was read\.", line)
                   for line in plain.stdout.splitlines()), plain.stdout
    finally:
        h.sh(h.c, f"rm -f {d}/.writing")
        time.sleep(0.3)
        h.sh(h.c, f"rm -f {d}/aaa-first* {d}/zzz-second*")


def _host_sqlite3_tar() -> bytes:
    """The host's sqlite3 program and the shared libraries it loads, as a tar for put_archive
    at / (the busybox sandbox image has no SQLite of its own)."""
    import io
    import tarfile

    exe = shutil.which("sqlite3")
    assert exe, "the sqlite3 program (Debian package sqlite3) is needed for this test"
    out = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True).stdout
    paths = {exe}
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) > parts.index("=>") + 1 and parts[parts.index("=>") + 1].startswith("/"):
            paths.add(parts[parts.index("=>") + 1])
        elif parts and parts[0].startswith("/"):
            paths.add(parts[0])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(paths):
            data = Path(p).read_bytes()  # follows the soname symlink: a regular file in the sandbox
            info = tarfile.TarInfo(p.lstrip("/"))
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SQLITE_WRITER = """
cd {d} && touch .writing
sqlite3 db.sqlite "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, a INT, b INT, pad BLOB);
  INSERT OR IGNORE INTO t VALUES (1, 0, 0, zeroblob(0));" > /dev/null
i=0
while [ -e .writing ]; do
  i=$((i+1))
  echo "BEGIN; UPDATE t SET a = a + 1 WHERE k = 1; INSERT INTO t(a, b, pad) VALUES ($i, $i, randomblob(500));"
  echo "UPDATE t SET b = b + 1 WHERE k = 1; COMMIT;"
done | sqlite3 db.sqlite > /dev/null
"""


def test_frozen_backup_of_a_live_sqlite_wal_database_opens_consistent(h, tmp_path):
    """A real SQLite writer in WAL mode inside the sandbox, committing a two-update transaction
    in a loop (its WAL checkpointed as it grows). Each frozen backup holds db, -wal and -shm of
    one instant: the copy passes SQLite's integrity check and shows both updates of every
    committed transaction."""
    import sqlite3

    d = f"{STATE}/memory"
    h.register(h.c)
    c = h.container(h.c)
    assert c.put_archive("/", _host_sqlite3_tar())
    c.exec_run(["sh", "-c", SQLITE_WRITER.format(d=d)], user="root", detach=True)
    try:
        deadline = time.monotonic() + 30
        while "db.sqlite-wal" not in h.sh(h.c, f"ls {d}") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "db.sqlite-wal" in h.sh(h.c, f"ls {d}"), "the writer did not start in WAL mode"
        seen = []
        for i in range(3):
            res = h.nemoclaw("backup-all", "--json")
            assert res.returncode == 0, res.stderr
            [backed] = json.loads(res.stdout)["summary"]["backed_up"]
            assert backed["frozen_seconds"] is not None
            src = Path(backed["path"]) / ".openclaw" / "memory"
            copy = tmp_path / f"copy{i}"
            copy.mkdir()
            for name in ("db.sqlite", "db.sqlite-wal", "db.sqlite-shm"):
                if (src / name).exists():
                    shutil.copy(src / name, copy / name)
            con = sqlite3.connect(copy / "db.sqlite")  # recovers the WAL like after a power cut
            try:
                assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                a, b = con.execute("SELECT a, b FROM t WHERE k = 1").fetchone()
                rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
            finally:
                con.close()
            assert a == b == rows - 1, (a, b, rows)
            seen.append(a)
        assert len(set(seen)) == 3, seen  # the writer went on between the backups
    finally:
        h.sh(h.c, f"rm -f {d}/.writing")
        time.sleep(0.5)
        h.sh(h.c, f"rm -f {d}/db.sqlite*")


# --- whole-home and agent scope --------------------------------------------------------------


def test_whole_home_is_the_default_scope_minus_runtime_files_and_restores_whole(h):
    """NemoClaw #11767/#2882: files outside the agent's declared dirs (here /sandbox/user-data)
    are backed up; NemoClaw's per-install config (.nemoclaw/config.json) is not, and a restore
    leaves the sandbox's own copy alone."""
    h.register(h.b)
    h.sh(h.b, "set -e; mkdir -p /sandbox/user-data/notes /sandbox/.nemoclaw/blueprints; "
              "head -c 70000 /dev/urandom > /sandbox/user-data/notes/big.bin; echo hello > /sandbox/user-data/a.txt; "
              "ln -s notes/big.bin /sandbox/user-data/link; echo '{\"install\": 1}' > /sandbox/.nemoclaw/config.json; "
              "echo bp > /sandbox/.nemoclaw/blueprints/x.yaml; echo keep > /sandbox/.nemoclaw/state.json")
    try:
        want = h.sh(h.b, "sha256sum /sandbox/user-data/notes/big.bin /sandbox/user-data/a.txt")
        res = h.nemoclaw("backup-all", "--json")
        assert res.returncode == 0, res.stderr
        [backed] = json.loads(res.stdout)["summary"]["backed_up"]
        assert backed["scope"] == "home"
        d = Path(backed["path"])
        m = load_manifest(d)
        assert (m.scope, m.dir) == ("home", "/sandbox")
        assert ".nemoclaw/config.json" in m.excludes and ".nemoclaw/blueprints" in m.excludes
        got = {p: hashlib.sha256((d / p).read_bytes()).hexdigest() for p in ("user-data/notes/big.bin", "user-data/a.txt")}
        assert got == {line.split()[1][len("/sandbox/"):]: line.split()[0] for line in want.splitlines()}
        assert os.readlink(d / "user-data" / "link") == "notes/big.bin"
        assert (d / ".nemoclaw" / "state.json").read_text() == "keep\n"
        assert not (d / ".nemoclaw" / "config.json").exists() and not (d / ".nemoclaw" / "blueprints").exists()
        assert agent_sums(d) == h.sandbox_sums(h.b)  # the agent's state is in it as well

        # Restore: the home becomes the backup again; the sandbox's own config stays as it is.
        h.sh(h.b, "set -e; rm -rf /sandbox/user-data/notes; echo changed > /sandbox/user-data/a.txt; "
                  "echo extra > /sandbox/extra.txt; echo '{\"install\": 2}' > /sandbox/.nemoclaw/config.json")
        res = h.nemoclaw("backups", "restore", h.b)
        assert res.returncode == 0, res.stdout + res.stderr
        assert h.sh(h.b, "sha256sum /sandbox/user-data/notes/big.bin /sandbox/user-data/a.txt") == want
        assert h.sh(h.b, "ls -A /sandbox").split() == [".nemoclaw", ".openclaw", "user-data"]
        assert h.sh(h.b, "cat /sandbox/.nemoclaw/config.json") == '{"install": 2}\n'
        assert h.sh(h.b, "cat /sandbox/.nemoclaw/blueprints/x.yaml") == "bp\n"

        # --scope agent: only the agent's declared state, relative to its dir, as before.
        res = h.nemoclaw("backup-all", "--scope", "agent", "--json")
        assert res.returncode == 0, res.stderr
        [backed] = json.loads(res.stdout)["summary"]["backed_up"]
        d = Path(backed["path"])
        m = load_manifest(d)
        assert (backed["scope"], m.scope, m.dir) == ("agent", "agent", STATE)
        assert not (d / "user-data").exists() and (d / "workspace" / "SOUL.md").is_file()
        assert tree_sums(d) == h.sandbox_sums(h.b)
        assert h.nemoclaw("backups", "verify", h.b, "--all").returncode == 0
    finally:
        h.sh(h.b, "rm -rf /sandbox/user-data /sandbox/.nemoclaw /sandbox/extra.txt")


# --- backups verify / prune -------------------------------------------------------------------


def test_verify_finds_a_flipped_byte_and_a_missing_file(h):
    h.register(h.a)
    assert h.nemoclaw("backup-all").returncode == 0
    [d] = h.committed(h.a)
    ok = h.nemoclaw("backups", "verify", h.a)
    assert ok.returncode == 0 and f"  ✓ {h.a} {d.name}:" in ok.stdout

    rel = ".openclaw/" if load_manifest(d).scope == "home" else ""
    victim = d / f"{rel}workspace" / "projects" / "demo" / "data" / "blob.bin"
    original = victim.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    victim.write_bytes(bytes(flipped))
    res = h.nemoclaw("backups", "verify", h.a)
    assert res.returncode == 1
    assert res.stderr.startswith(f"  ✗ {h.a} {d.name}: {rel}workspace/projects/demo/data/blob.bin"), res.stderr

    victim.write_bytes(original)
    assert h.nemoclaw("backups", "verify", h.a).returncode == 0
    (d / f"{rel}identity" / "device.json").unlink()
    res = h.nemoclaw("backups", "verify", h.a)
    assert res.returncode == 1
    assert res.stderr.startswith(f"  ✗ {h.a} {d.name}: {rel}identity/device.json"), res.stderr


def test_prune_keeps_the_newest_verified_backup(h):
    h.register(h.a)
    for _ in range(3):
        assert h.nemoclaw("backup-all").returncode == 0
    oldest, middle, newest = h.committed(h.a)  # timestamps sort by name
    # Damage the newest: the newest *verified* backup is now the middle one.
    (newest / ".openclaw" / "workspace" / "one-byte.txt").write_bytes(b"X")  # whole-home backups

    res = h.nemoclaw("backups", "prune", "--keep", "1", h.a)
    assert res.returncode == 0, res.stderr
    assert f"  Removed {h.a} {oldest.name}" in res.stdout
    assert f"  Kept {h.a} {middle.name}: the newest backup that verifies" in res.stdout
    assert h.committed(h.a) == [middle, newest]

    res = h.nemoclaw("backups", "prune", "--keep", "0")
    assert res.returncode == 0, res.stderr
    assert h.committed(h.a) == [middle]  # never the newest verified one, even with --keep 0
    assert h.nemoclaw("backups", "verify", h.a).returncode == 0


def test_sandbox_left_frozen_by_a_killed_run_is_unpaused_by_the_next_run(h):
    h.register(h.a, h.b)
    run = Paused(h, "archive", h.a, "--parallel", "1")
    code, _out, _err = run.kill(signal.SIGKILL)  # no finally runs: the container stays paused
    assert code == -signal.SIGKILL
    c = h.container(h.a)
    c.reload()
    assert c.attrs["State"]["Paused"]

    res = h.nemoclaw("backup-all")
    assert f"  Unpaused '{h.a}' (container {c.name}): interrupted run {run.run_id} had paused it." in res.stdout.splitlines()
    c.reload()
    assert c.status == "running" and not c.attrs["State"]["Paused"]
    # Unpaused before the list, so this same run already sees it running and backs it up.
    assert res.returncode == 0, res.stderr
    assert "not running" not in res.stdout
    assert h.a in assert_only_complete_backups(h)
    again = h.nemoclaw("backup-all")
    assert again.returncode == 0, again.stderr
    assert "Unpaused" not in again.stdout


# --- one bad sandbox never stops the others (docs/backups.md) --------------------------------------


@pytest.fixture(scope="module")
def extra(host: Host) -> dict[str, str]:
    """Two more sandboxes for tests that empty or remove them: `empty` and `removed`."""
    tag = host.a.split("-")[0]
    names = {"empty": f"{tag}-empty", "removed": f"{tag}-removed"}
    for name in names.values():
        host.sim.add_sandbox(name)
    host.entries.update(host.sim.registry()["sandboxes"])
    return names


def test_a_container_removed_during_the_backup_fails_that_sandbox_and_commits_nothing_of_it(h, extra):
    gone = extra["removed"]
    h.register(h.a, gone)
    run = Paused(h, "archive", gone, "--parallel", "1")
    remove_container(h.container(gone))  # mid-stream: the first file is staged, the rest is not
    run.marker.unlink()  # let the run go on
    out, err = run.proc.communicate(timeout=180)
    assert run.proc.returncode == 1, out + err
    assert f"  ✗ {gone}: backup failed (its container " in err and "no longer exists" in err, err
    assert SUMMARY.format(1, 1, 0) in out.splitlines()
    found = assert_only_complete_backups(h)
    assert sorted(found) == [h.a] and not (h.backups / gone).exists()
    assert h.staged_runs() == []


def test_an_empty_capture_is_committed_with_a_warning_not_a_check_mark(h, extra):
    empty = extra["empty"]
    h.sh(empty, f"rm -rf {STATE} && mkdir -p {STATE}")
    h.register(h.a, empty)
    res = h.nemoclaw("backup-all", "--scope", "agent")  # the agent's state: none of it exists
    assert res.returncode == 0, res.stderr
    assert f"  ✓ {empty}:" not in res.stdout
    [warning] = [line for line in res.stderr.splitlines() if line.startswith(f"  ⚠ {empty}: empty backup:")]
    assert f"none of the agent's state dirs or files exist under {STATE}" in warning
    assert f"  ✓ {h.a}: " in res.stdout


def test_a_name_registered_in_two_roots_and_a_row_named_unlike_its_key_fail_alone(h):
    """The same sandbox name in the default registry and a gateway port's is ambiguous; a row
    whose `name` differs from its key cannot be acted on. Each fails alone (exit 1), never a
    silent "not running" skip, and the others are backed up."""
    doc = json.loads(h.registry_file.read_text())
    doc["sandboxes"] = {h.a: h.entries[h.a], h.b: h.entries[h.b], "first": dict(h.entries[h.c]) | {"name": h.c}}
    h.registry_file.write_text(json.dumps(doc))
    port_file = h.registry_file.parent / "gateways" / "8081" / "sandboxes.json"
    port_file.parent.mkdir(parents=True)
    port_file.write_text(json.dumps({"sandboxes": {h.b: h.entries[h.b]}}))
    res = h.nemoclaw("backup-all")
    assert res.returncode == 1, res.stdout + res.stderr
    assert (f"  ✗ {h.b}: backup failed (registered more than once (entries '{h.b}' in {h.registry_file}, "
            f"'{h.b}' in {port_file}); remove all but one and rerun)") in res.stderr.splitlines()
    assert (f"  ✗ first: backup failed (its registry entry 'first' in {h.registry_file} names sandbox '{h.c}'; "
            "make the key and its \"name\" the same (the sandbox's name in OpenShell) and rerun)") in res.stderr.splitlines()
    assert SUMMARY.format(1, 2, 0) in res.stdout.splitlines()
    assert sorted(assert_only_complete_backups(h)) == [h.a]
    assert "Traceback" not in res.stderr and "Step '" not in res.stderr


def test_a_sandbox_name_the_store_refuses_fails_that_sandbox_alone(h):
    """The backup targets come from the registry and the listing; rebuild-sandbox names one
    explicitly. A name that cannot be a directory must fail that sandbox, not the run."""
    from orchestrator.steps.backup import _jobs
    from orchestrator.store import BackupStore, Staging
    from orchestrator.adapters.nemoclaw_registry import SandboxEntry

    class Ctx:  # the two things _jobs reads
        staging = Staging.create(h.backups / ".staging", "run-names")

        def fact(self, name):  # noqa: ANN001, ANN202 - the `registry` fact
            assert name == "registry"
            return []

    try:
        names = ["a b", "../evil", ".hidden", "x" * 300, "Ünï", h.a]
        entries = [SandboxEntry(n, "openclaw", None) for n in names]
        jobs, runnable = _jobs(Ctx(), BackupStore(h.backups, load_agent), entries, "2026-05-01T00-00-00-000Z", {}, "home")
        assert [e.name for e in runnable] == [h.a]
        assert [j.name for j in jobs if j.error] == names[:-1]
        assert all("invalid sandbox name" in j.error for j in jobs if j.error)
    finally:
        Ctx.staging.discard()


def test_bad_name_in_the_listing_is_one_failure_and_the_run_ends_incomplete(h):
    hidden = f".{h.a}"
    try:
        h.sim.add_sandbox(hidden)
    except Exception as exc:  # noqa: BLE001 - the stand-in may refuse the name itself
        pytest.fail(f"the stand-in could not create a sandbox named {hidden!r}: {exc}")
    h.entries.update(h.sim.registry()["sandboxes"])
    h.register(h.a, hidden)
    res = h.nemoclaw("backup-all")
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"  ✗ {hidden}: backup failed (invalid sandbox name '{hidden}':" in res.stderr
    assert "StagingError" not in res.stderr and "Rerun with --debug" not in res.stderr
    assert SUMMARY.format(1, 1, 0) in res.stdout.splitlines()
    assert sorted(assert_only_complete_backups(h)) == [h.a]


def test_a_sandbox_over_the_size_limit_or_the_free_space_fails_clearly(h):
    h.register(h.a, h.b)
    res = h.nemoclaw("backup-all", env={"NEMOCLAW_BACKUP_MAX_BYTES": "1000"})
    assert res.returncode == 1, res.stdout + res.stderr
    for name in (h.a, h.b):
        assert (f"  ✗ {name}: backup failed (its state is larger than the per-sandbox limit of 1000 B "
                "(NEMOCLAW_BACKUP_MAX_BYTES); nothing of it was committed.") in res.stderr, res.stderr
    assert assert_only_complete_backups(h) == {} and h.staged_runs() == []

    res = h.nemoclaw("backup-all", env={"NEMOCLAW_BACKUP_RESERVE_BYTES": "1000000T"})
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"  ✗ {h.a}: backup failed (not enough free space for its backup on the filesystem of " in res.stderr
    assert "must stay free (NEMOCLAW_BACKUP_RESERVE_BYTES)" in res.stderr
    assert assert_only_complete_backups(h) == {}

    res = h.nemoclaw("backup-all", env={"NEMOCLAW_BACKUP_MAX_BYTES": "lots"})
    assert res.returncode == 1
    assert "NEMOCLAW_BACKUP_MAX_BYTES='lots' is not a size" in res.stderr and "Traceback" not in res.stderr

    res = h.nemoclaw("backup-all", env={"NEMOCLAW_BACKUP_MAX_BYTES": "1G"})
    assert res.returncode == 0, res.stderr  # within the limit: backed up as usual


def test_a_symlinked_backups_folder_is_a_plain_sentence_and_nothing_is_written_through_it(h, tmp_path):
    h.register(h.a, h.b)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    h.backups.symlink_to(outside)
    try:
        res = h.nemoclaw("backup-all")
        assert res.returncode == 1, res.stdout + res.stderr
        assert (f"  Refusing to operate on path: {h.backups} is a symbolic link (target: {outside}). "
                "This may indicate a symlink attack.") in res.stderr.splitlines()
        assert "Step '" not in res.stderr and "StagingError" not in res.stderr and "--debug" not in res.stderr
        assert list(outside.iterdir()) == []
    finally:
        h.backups.unlink()

    # One sandbox's folder symlinked: that sandbox fails, the other is committed.
    h.backups.mkdir()
    (h.backups / h.b).symlink_to(outside)
    res = h.nemoclaw("backup-all")
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"  ✗ {h.b}: backup failed (Refusing to operate on path: {h.backups / h.b} is a symbolic link" in res.stderr
    assert f"  ✓ {h.a}: " in res.stdout and list(outside.iterdir()) == []
    (h.backups / h.b).unlink()


def _run_events(h: Host) -> list[dict[str, Any]]:
    [log] = sorted((h.nemoclaw_dir / "runs").glob("*.jsonl"))
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_one_transient_sandbox_list_failure_is_retried_once_with_its_cause_shown_and_logged(h):
    h.register(h.a)
    h.sim.set_fault("list", "connection to the gateway database was lost", code="Unavailable")
    res = h.nemoclaw("backup-all")
    assert res.returncode == 0, res.stdout + res.stderr
    cause = 'status: Unavailable, message: "connection to the gateway database was lost"'
    assert f"  `openshell sandbox list` failed ({cause}); retrying once." in res.stdout.splitlines()
    [retry] = [e for e in _run_events(h) if e.get("event") == "sandbox_list_retry"]
    assert retry["cause"] == cause
    assert sorted(assert_only_complete_backups(h)) == [h.a]


def test_a_persistent_sandbox_list_failure_names_its_grpc_cause_in_the_output_and_the_run_log(h):
    h.register(h.a)
    h.sim.set_fault("list", "still down", code="Unavailable", sticky=True)
    try:
        res = h.nemoclaw("backup-all")
    finally:
        h.sim.clear_faults()
    assert res.returncode == 1, res.stdout + res.stderr
    cause = 'status: Unavailable, message: "still down"'
    lines = res.stderr.splitlines()
    assert "  Failed to query running sandboxes from OpenShell." in lines
    assert f"  OpenShell said: {cause}" in lines
    events = _run_events(h)
    assert [e["cause"] for e in events if e.get("event") == "sandbox_list_failed"] == [cause]
    assert any(cause in (e.get("error") or "") for e in events if e.get("event") == "step_failed")
    assert assert_only_complete_backups(h) == {}
