"""End-to-end: `nemoclaw backup-all` and `nemoclaw backups list|verify|restore|prune` as a user
runs them, against the OpenShell stand-in and real sandbox containers on the real Docker engine.

One simulated host serves the whole module (bringing one up costs seconds on these machines):
three ready sandboxes, one stopped and one hostile. Each test starts from an empty
`~/.nemoclaw` (no backups, lock or run logs) and registers the sandboxes it needs, so the
tests do not depend on each other's order. Sandbox names carry a random tag: other runs on
the same engine use their own containers with the same label scheme.

Exact points to kill a run at come from the documented test hook of orchestrator/steps/_kill_points.py
(NEMOCLAW_TEST_PAUSE_AT / NEMOCLAW_TEST_PAUSE_MARKER): the run stops there and says so in a
marker file; the test then kills the real process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.steps._kill_points import PAUSE_ENV, PAUSE_MARKER_ENV
from orchestrator.store import MANIFEST_NAME, load_manifest, verify
from tests.simenv import SimEnv

pytestmark = pytest.mark.docker

STATE = "/sandbox/.openclaw"
OPENCLAW_DIRS = ("agents extensions workspace skills hooks identity devices canvas cron memory telegram wechat "
                 "whatsapp credentials").split()
SKIP = "  Skipping '{}' (not running)"
SUMMARY = "  Pre-upgrade backup: {} backed up, {} failed, {} skipped"
SWEPT = "  Removed leftovers of 1 interrupted run"
EMPTY = "  No sandboxes registered. Nothing to back up."


@dataclass
class Host:
    sim: SimEnv
    docker: Any
    a: str
    b: str
    c: str
    stopped: str
    hostile: str
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
    names = {k: f"bk{tag}-{k}" for k in ("a", "b", "c", "stopped", "hostile")}
    outside = base / "outside-target"
    try:
        sim.up(sandboxes=0)
        for key in ("a", "b", "c", "stopped", "hostile"):
            sim.add_sandbox(names[key])
        sim.stop_sandbox(names["stopped"])
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


def test_three_ready_one_stopped_commits_three_backups_equal_to_the_containers(h):
    res = h.nemoclaw("backup-all")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert SKIP.format(h.stopped) in lines
    assert SUMMARY.format(3, 0, 1) in lines
    assert "  Backups stored in: ~/.nemoclaw/rebuild-backups/" in lines
    assert "Backup complete" not in res.stdout  # upstream asserts its absence
    found = assert_only_complete_backups(h)
    assert sorted(found) == sorted([h.a, h.b, h.c])
    for name in (h.a, h.b, h.c):
        [d] = found[name]
        assert f"  ✓ {name}: " in res.stdout and f"→ {d}" in res.stdout
        sums = h.sandbox_sums(name)
        assert len(sums) > 10
        assert tree_sums(d) == sums  # the files on disk hash equal to the container's files
    assert not (h.backups / h.stopped).exists()
    assert h.staged_runs() == []  # staging is gone after a finished run

    listed = json.loads(h.nemoclaw("backups", "list", "--verify", "--json").stdout)
    assert sorted(r["sandbox"] for r in listed["backups"]) == sorted([h.a, h.b, h.c])
    assert all(r["verified"] for r in listed["backups"]) and listed["invalid"] == []


def test_backup_change_restore_gives_back_the_backed_up_tree(h):
    h.register(h.a)
    assert h.nemoclaw("backup-all").returncode == 0
    [backup] = h.committed(h.a)
    before = h.sandbox_sums(h.a)
    assert tree_sums(backup) == before
    h.sh(h.a, f"cd {STATE} && echo changed > workspace/SOUL.md && rm -rf skills && echo extra > workspace/extra.txt "
              "&& head -c 3000 /dev/urandom > agents/main/sessions/sessions.json")
    assert h.sandbox_sums(h.a) != before

    res = h.nemoclaw("backups", "restore", h.a)
    assert res.returncode == 0, res.stderr
    assert f"  ✓ Restored '{h.a}' from {backup.name};" in res.stdout
    assert h.sandbox_sums(h.a) == tree_sums(backup)  # the sandbox tree hashes equal to the backup
    assert "extra.txt" not in h.sh(h.a, f"ls {STATE}/workspace")


@pytest.mark.parametrize("consistent", [False, True], ids=["plain", "consistent"])
def test_hostile_sandbox_fails_alone_and_nothing_leaves_staging(h, consistent):
    h.register(h.a, h.hostile, h.b)
    listing = h.sh(h.hostile, f"ls -l {STATE}/workspace {STATE}/memory")
    assert "crw" in listing and "prw" in listing and "escape-abs ->" in listing  # what the sandbox serves
    res = h.nemoclaw("backup-all", *(["--consistent"] if consistent else []))
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
    links = {s.path: s.target for s in m.symlinks}
    assert links["workspace/venv/bin/python"] == "/usr/bin/python3" and links["workspace/out"] == str(h.outside)
    files = {f.path: f for f in m.files}
    assert files["workspace/soul-hard"].sha256 == files["workspace/SOUL.md"].sha256
    assert files["workspace/tool"].mode == 0o4755
    assert "workspace/fifo" not in files and "workspace/dev" not in files
    assert os.readlink(backup / "workspace/venv/bin/python") == "/usr/bin/python3"
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
    res = h.nemoclaw("backup-all", "--strict")
    assert res.returncode == 1
    assert f"  ✗ {h.hostile}: backup failed" in res.stderr
    assert "--strict: nothing was committed" in res.stderr
    assert assert_only_complete_backups(h) == {}
    assert h.staged_runs() == []
    # The same sandboxes without --strict: the two good ones are committed (so --strict made the difference).
    assert h.nemoclaw("backup-all").returncode == 1
    assert sorted(assert_only_complete_backups(h)) == sorted([h.a, h.b])


def test_json_prints_a_machine_readable_summary_on_stdout(h):
    h.register(h.a, h.stopped, h.hostile)
    res = h.nemoclaw("backup-all", "--json")
    assert res.returncode == 1
    doc = json.loads(res.stdout)  # stdout is the JSON document and nothing else
    assert doc["workflow"] == "backup-all" and doc["exit_code"] == 1
    s = doc["summary"]
    [backed] = s["backed_up"]
    assert backed["sandbox"] == h.a and Path(backed["path"]) == h.committed(h.a)[0]
    assert backed["files"] == len(load_manifest(Path(backed["path"])).files) > 0
    assert s["skipped"] == [{"sandbox": h.stopped, "reason": "not running"}]
    assert [f["sandbox"] for f in s["failed"]] == [h.hostile]
    assert SUMMARY.format(1, 1, 1) not in res.stdout


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
    assert f"Interrupted: staged data of run {first.run_id} was discarded; nothing partial was committed." in err
    assert assert_only_complete_backups(h) == {}
    assert h.staged_runs() == []
    assert not (h.nemoclaw_dir / "orchestrator.lock").exists()


def test_consistent_pauses_while_reading_and_unpauses_when_interrupted(h):
    h.register(h.a, h.b)
    run = Paused(h, "archive", h.a, "--consistent", "--parallel", "1")
    c = h.container(h.a)
    try:
        c.reload()
        assert c.attrs["State"]["Paused"], "--consistent did not pause the container while reading it"
    finally:
        code, _out, _err = run.kill(signal.SIGTERM)
    assert code == 128 + signal.SIGTERM
    for name in (h.a, h.b):
        c = h.container(name)
        c.reload()
        assert c.status == "running" and not c.attrs["State"]["Paused"], name
    assert assert_only_complete_backups(h) == {}


# --- backups verify / prune -------------------------------------------------------------------


def test_verify_finds_a_flipped_byte_and_a_missing_file(h):
    h.register(h.a)
    assert h.nemoclaw("backup-all").returncode == 0
    [d] = h.committed(h.a)
    ok = h.nemoclaw("backups", "verify", h.a)
    assert ok.returncode == 0 and f"  ✓ {h.a} {d.name}:" in ok.stdout

    victim = d / "workspace" / "projects" / "demo" / "data" / "blob.bin"
    original = victim.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    victim.write_bytes(bytes(flipped))
    res = h.nemoclaw("backups", "verify", h.a)
    assert res.returncode == 1
    assert res.stderr.startswith(f"  ✗ {h.a} {d.name}: workspace/projects/demo/data/blob.bin"), res.stderr

    victim.write_bytes(original)
    assert h.nemoclaw("backups", "verify", h.a).returncode == 0
    (d / "identity" / "device.json").unlink()
    res = h.nemoclaw("backups", "verify", h.a)
    assert res.returncode == 1
    assert res.stderr.startswith(f"  ✗ {h.a} {d.name}: identity/device.json"), res.stderr


def test_prune_keeps_the_newest_verified_backup(h):
    h.register(h.a)
    for _ in range(3):
        assert h.nemoclaw("backup-all").returncode == 0
    oldest, middle, newest = h.committed(h.a)  # timestamps sort by name
    # Damage the newest: the newest *verified* backup is now the middle one.
    (newest / "workspace" / "one-byte.txt").write_bytes(b"X")

    res = h.nemoclaw("backups", "prune", "--keep", "1", h.a)
    assert res.returncode == 0, res.stderr
    assert f"  Removed {h.a} {oldest.name}" in res.stdout
    assert f"  Kept {h.a} {middle.name}: the newest backup that verifies" in res.stdout
    assert h.committed(h.a) == [middle, newest]

    res = h.nemoclaw("backups", "prune", "--keep", "0")
    assert res.returncode == 0, res.stderr
    assert h.committed(h.a) == [middle]  # never the newest verified one, even with --keep 0
    assert h.nemoclaw("backups", "verify", h.a).returncode == 0


def test_sandbox_left_paused_by_a_killed_consistent_run_is_unpaused_by_the_next_run(h):
    h.register(h.a, h.b)
    run = Paused(h, "archive", h.a, "--consistent", "--parallel", "1")
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
    """Two more sandboxes for tests that empty or remove them: `empty` and `gone`."""
    tag = host.a.split("-")[0]
    names = {"empty": f"{tag}-empty", "gone": f"{tag}-gone"}
    for name in names.values():
        host.sim.add_sandbox(name)
    host.entries.update(host.sim.registry()["sandboxes"])
    return names


def test_a_container_removed_during_the_backup_fails_that_sandbox_and_commits_nothing_of_it(h, extra):
    gone = extra["gone"]
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
    res = h.nemoclaw("backup-all")
    assert res.returncode == 0, res.stderr
    assert f"  ✓ {empty}:" not in res.stdout
    [warning] = [line for line in res.stderr.splitlines() if line.startswith(f"  ⚠ {empty}: empty backup:")]
    assert f"none of the agent's state dirs or files exist under {STATE}" in warning
    assert f"  ✓ {h.a}: " in res.stdout


def test_names_the_store_refuses_and_names_registered_twice_fail_alone(h):
    doc = json.loads(h.registry_file.read_text())
    dup = dict(h.entries[h.b])
    doc["sandboxes"] = {h.a: h.entries[h.a], "first": dup | {"name": h.b}, "second": dup | {"name": h.b}, h.c: h.entries[h.c]}
    h.registry_file.write_text(json.dumps(doc))
    res = h.nemoclaw("backup-all")
    assert res.returncode == 1, res.stdout + res.stderr
    assert (f"  ✗ {h.b}: backup failed (registered more than once in sandboxes.json (entries 'first', 'second'); "
            "remove all but one and rerun)") in res.stderr.splitlines()
    assert SUMMARY.format(2, 1, 0) in res.stdout.splitlines()
    assert sorted(assert_only_complete_backups(h)) == sorted([h.a, h.c])
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
        jobs, runnable = _jobs(Ctx(), BackupStore(h.backups), entries, "2026-05-01T00-00-00-000Z")
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
