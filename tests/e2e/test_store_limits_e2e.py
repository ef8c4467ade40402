"""End-to-end: what the backup store does with paths too long for the host, paths past Docker's
archive limit and sparse files, and how long it keeps a sandbox frozen (docs/backups.md, "Long
paths, sparse files and the freeze limit"), as a user runs `nemoclaw backup-all`, `backups ...`
and `rebuild-sandbox` against the OpenShell stand-in and real sandbox containers on the real
Docker engine.

One simulated host serves the module: sandboxes `a` and `b`. Each test starts from an empty
`~/.nemoclaw` and removes what it made in the sandboxes. Deep trees are made and removed with
relative `cd -P` steps: the sandbox's busybox cannot name a path past PATH_MAX in one go.
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
from pathlib import Path
from typing import Any

import pytest

from orchestrator.steps._kill_points import PAUSE_ENV, PAUSE_MARKER_ENV
from orchestrator.store import MANIFEST_NAME, load_manifest, verify
from tests.support.simenv import SimEnv

pytestmark = pytest.mark.docker

D200 = "d" * 200
PATH_MAX = 4096  # Linux, with the NUL: a path of 4,095 bytes is the longest a call can name


class Host:
    def __init__(self, sim: SimEnv, docker: Any, a: str, b: str) -> None:
        self.sim, self.docker, self.a, self.b = sim, docker, a, b
        self.entries = sim.registry()["sandboxes"]

    @property
    def home(self) -> Path:
        return self.sim.home

    @property
    def backups(self) -> Path:
        return self.home / ".nemoclaw" / "rebuild-backups"

    def register(self, *names: str) -> None:
        doc = {"sandboxes": {n: self.entries[n] for n in names}, "defaultSandbox": names[0]}
        (self.home / ".nemoclaw" / "sandboxes.json").write_text(json.dumps(doc, indent=2))

    @property
    def exe(self) -> str:
        found = shutil.which("nemoclaw", path=self.sim.env["PATH"])
        assert found
        return found

    def nemoclaw(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([self.exe, *args], env={**self.sim.env, **(env or {})}, capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
        assert "Traceback" not in res.stderr, res.stderr
        return res

    def container(self, name: str) -> Any:
        [c] = self.docker.containers.list(all=True, filters={"label": f"openshell.ai/sandbox-name={name}"})
        return c

    def status(self, name: str) -> str:
        [row] = self.docker.api.containers(all=True, filters={"label": f"openshell.ai/sandbox-name={name}"})
        return "paused" if "(Paused)" in row["Status"] else row["State"]

    def sh(self, name: str, script: str) -> str:
        rc, out = self.container(name).exec_run(["sh", "-c", script], user="root")
        assert rc == 0, out.decode(errors="replace")
        return out.decode()

    def committed(self, name: str) -> list[Path]:
        return sorted(p for p in (self.backups / name).glob("*") if not p.name.startswith("."))


def descend(top: str, depth: int, name: str = D200) -> str:
    """Shell steps that go `depth` levels of `name` down from `top`, creating them."""
    return f"mkdir -p {top} && cd -P {top} && for i in $(seq 1 {depth}); do mkdir -p {name} && cd -P {name}; done"


@pytest.fixture(scope="module")
def host(tmp_path_factory, docker_client):
    base = tmp_path_factory.mktemp("limits").resolve()
    sim = SimEnv(base / "home")
    sim.home.mkdir()
    tag = uuid.uuid4().hex[:6]
    a, b = f"lim{tag}-a", f"lim{tag}-b"
    try:
        sim.up(sandboxes=0)
        sim.add_sandbox(a)
        sim.add_sandbox(b)
        yield Host(sim, docker_client, a, b)
    finally:
        if sim.paths.deployment_file.exists():
            sim.down()


@pytest.fixture
def h(host: Host):
    nc = host.home / ".nemoclaw"
    for p in nc.iterdir() if nc.exists() else []:
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    nc.mkdir(exist_ok=True)
    host.register(host.a, host.b)
    yield host
    for name in (host.a, host.b):
        c = host.container(name)
        c.reload()
        if c.status == "paused":
            c.unpause()
        # The deepest directory first (relative steps), then the rest with plain paths.
        host.sh(name, f"if [ -d /sandbox/deep ]; then {descend('/sandbox/deep', 19)} && cd -P {'m' * 100} "
                      f"2>/dev/null && rm -rf {'e' * 255}; fi; cd /; rm -rf /sandbox/long /sandbox/deep /sandbox/sparse.img "
                      "/sandbox/after.txt")


# --- a path too long for the host (finding 2) ---------------------------------------------------


def test_a_path_too_long_for_the_host_fails_that_sandbox_alone_and_commits_nothing_of_it(h):
    """20 nested directories of 200-character names: 4,035 characters in the sandbox, legal
    there and read by Docker, but past PATH_MAX once under the backup folder."""
    h.sh(h.a, f"{descend('/sandbox/long', 20)} && echo kept > f")
    res = h.nemoclaw("backup-all")
    assert res.returncode == 1, res.stdout + res.stderr
    line = next(x for x in res.stderr.splitlines() if x.startswith(f"  ✗ {h.a}: backup failed ("))
    assert "too long for the backup folder on this host" in line and len(line) < 600, line
    assert h.committed(h.a) == []
    assert len(h.committed(h.b)) == 1 and f"✓ {h.b}: " in res.stdout
    assert "  Pre-upgrade backup: 1 backed up, 1 failed, 0 skipped" in res.stdout
    assert list((h.backups / ".staging").glob("*")) == []
    listed = h.nemoclaw("backups", "list")
    assert listed.returncode == 0 and h.b in listed.stdout, listed.stdout + listed.stderr


def test_rebuild_of_a_sandbox_holding_a_path_too_long_for_the_host_aborts_before_the_delete(h):
    h.sh(h.a, f"{descend('/sandbox/long', 20)} && echo kept > f")
    before = h.container(h.a).id
    res = h.nemoclaw("rebuild-sandbox", h.a)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "  Aborting rebuild to prevent data loss." in res.stdout + res.stderr
    assert h.container(h.a).id == before
    assert h.sh(h.a, f"{descend('/sandbox/long', 20)} && cat f") == "kept\n"


def _plant_unreadable(backup: Path) -> str:
    """Put into a committed backup what an older release committed: a file whose path under the
    backup folder is past PATH_MAX, listed in its manifest with its true hash."""
    m = json.loads((backup / MANIFEST_NAME).read_text())
    parts = ["long", *[D200] * 20]
    fd = os.open(backup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i, part in enumerate(parts):
            os.mkdir(part, 0o755, dir_fd=fd)
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
            m["dirs"].append({"path": "/".join(parts[: i + 1]), "mode": 0o755})
        out = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, b"kept\n")
        os.close(out)
    finally:
        os.close(fd)
    rel = "/".join([*parts, "f"])
    m["files"].append({"path": rel, "size": 5, "sha256": hashlib.sha256(b"kept\n").hexdigest(), "mode": 0o644})
    m["files"].sort(key=lambda f: f["path"])
    m["dirs"].sort(key=lambda d: d["path"])
    (backup / MANIFEST_NAME).write_text(json.dumps(m, indent=2))
    return rel


def test_every_backups_command_reports_an_unreadable_backup_as_damaged_and_goes_on(h):
    assert h.nemoclaw("backup-all").returncode == 0
    [bad] = h.committed(h.a)
    [good] = h.committed(h.b)
    _plant_unreadable(bad)

    res = h.nemoclaw("backups", "list")
    assert res.returncode == 0, res.stdout + res.stderr
    rows = {line.split()[0]: line for line in res.stdout.splitlines() if line.startswith("  lim")}
    assert rows[h.a].endswith("DAMAGED") and rows[h.b].endswith("sizes ok"), res.stdout
    assert f"  Damaged backup {h.a} {bad.name}: long/" in res.stderr and "cannot be read on this host" in res.stderr

    res = h.nemoclaw("backups", "list", "--json")
    assert res.returncode == 0
    rows_json = {r["sandbox"]: r for r in json.loads(res.stdout)["backups"]}
    assert rows_json[h.a]["ok"] is False and rows_json[h.b]["ok"] is True

    res = h.nemoclaw("backups", "verify")
    assert res.returncode == 1
    assert f"  ✗ {h.a} {bad.name}: long/" in res.stderr and "cannot be read on this host" in res.stderr, res.stderr
    assert f"  ✓ {h.b} {good.name}: " in res.stdout

    res = h.nemoclaw("backups", "restore", h.a, "--dry-run")
    assert res.returncode == 1 and "  Refusing to restore a damaged backup: long/" in res.stderr, res.stderr

    res = h.nemoclaw("backups", "prune", "--keep", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"  Damaged: {h.a} {bad.name}: long/" in res.stderr
    assert bad.exists() and good.exists()


# --- paths past Docker's archive limit (finding 4) -----------------------------------------------


def _deep(h: Host, name: str) -> None:
    """A directory Docker's archive cannot read (4,190 bytes of path in the sandbox, past its
    PATH_MAX), below ones it can (3,934 bytes: short enough for the host's backup folder too)."""
    h.sh(name, f"{descend('/sandbox/deep', 19)} && mkdir {'m' * 100} && cd -P {'m' * 100} && mkdir {'e' * 255} "
               f"&& cd -P {'e' * 255} && echo only-here > lost.txt")


def test_a_path_past_dockers_archive_limit_fails_that_sandbox_loudly(h):
    _deep(h, h.a)
    res = h.nemoclaw("backup-all")
    assert res.returncode == 1, res.stdout + res.stderr
    line = next(x for x in res.stderr.splitlines() if x.startswith(f"  ✗ {h.a}: backup failed ("))
    assert "past Docker's archive path limit" in line, line
    assert h.committed(h.a) == [] and len(h.committed(h.b)) == 1


def test_rebuild_of_a_sandbox_holding_a_path_past_dockers_limit_aborts_before_the_delete(h):
    _deep(h, h.a)
    before = h.container(h.a).id
    res = h.nemoclaw("rebuild-sandbox", h.a)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "  Aborting rebuild to prevent data loss." in res.stdout + res.stderr
    assert h.container(h.a).id == before
    assert h.sh(h.a, f"{descend('/sandbox/deep', 19)} && cd -P {'m' * 100} && cd -P {'e' * 255} && cat lost.txt") \
        == "only-here\n"


def test_a_stopped_sandbox_too_deep_to_check_without_running_it_fails_loudly_and_is_not_rebuilt(h):
    """A stopped sandbox cannot be walked (no exec); a directory deep enough to have lost a child
    to Docker's limit fails its backup, so a rebuild aborts before the delete."""
    _deep(h, h.a)
    h.sim.stop_sandbox(h.a)
    try:
        before = h.container(h.a).id
        res = h.nemoclaw("backup-all")
        assert res.returncode == 1, res.stdout + res.stderr
        line = next(x for x in res.stderr.splitlines() if x.startswith(f"  ✗ {h.a}: backup failed ("))
        assert "cannot be checked for paths past Docker's archive path limit without running it" in line, line
        assert h.committed(h.a) == [] and len(h.committed(h.b)) == 1
        res = h.nemoclaw("rebuild-sandbox", h.a)
        assert res.returncode == 1 and "  Aborting rebuild to prevent data loss." in res.stdout + res.stderr
        assert h.container(h.a).id == before
    finally:
        h.sim.start_sandbox(h.a)
    assert h.sh(h.a, f"{descend('/sandbox/deep', 19)} && cd -P {'m' * 100} && cd -P {'e' * 255} && cat lost.txt") \
        == "only-here\n"


def test_a_whole_home_restore_never_clears_what_the_backup_does_not_hold(h):
    h.register(h.a)
    assert h.nemoclaw("backup-all").returncode == 0
    h.sh(h.a, "echo later > /sandbox/after.txt")
    _deep(h, h.a)
    res = h.nemoclaw("backups", "restore", h.a)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "past Docker's archive path limit" in res.stderr, res.stderr
    assert h.sh(h.a, "cat /sandbox/after.txt") == "later\n"  # nothing was cleared
    assert h.sh(h.a, f"{descend('/sandbox/deep', 19)} && cd -P {'m' * 100} && cd -P {'e' * 255} && cat lost.txt") \
        == "only-here\n"


# --- sparse files and the freeze limit (finding 8) -----------------------------------------------

SPARSE = 2 << 30


def test_a_sparse_file_is_stored_sparse_with_the_hash_of_its_content(h):
    """2 GiB of which 8 KiB are data: the backup takes about what the sandbox's copy takes."""
    h.register(h.a)
    h.sh(h.a, f"dd if=/dev/zero of=/sandbox/sparse.img bs=1 count=0 seek={SPARSE} 2>/dev/null && "
              "dd if=/dev/urandom of=/sandbox/sparse.img bs=4096 count=1 conv=notrunc 2>/dev/null && "
              f"dd if=/dev/urandom of=/sandbox/sparse.img bs=4096 count=1 seek={SPARSE // 4096 // 2} conv=notrunc 2>/dev/null")
    want = h.sh(h.a, "sha256sum /sandbox/sparse.img").split()[0]
    # Reading 2 GiB of zeros through the engine may take longer than the freeze limit on a busy
    # machine; that limit has its own test.
    res = h.nemoclaw("backup-all", env={"NEMOCLAW_BACKUP_FREEZE_MAX_SECONDS": "600"})
    assert res.returncode == 0, res.stdout + res.stderr
    [d] = h.committed(h.a)
    st = os.stat(d / "sparse.img")
    assert st.st_size == SPARSE
    assert st.st_blocks * 512 < 4 << 20, st.st_blocks * 512  # not 2 GiB on the host
    [rec] = [f for f in load_manifest(d).files if f.path == "sparse.img"]
    assert (rec.size, rec.sha256) == (SPARSE, want)
    assert verify(d, load_manifest(d)) is None  # the holes read back as the zeros that were hashed

    # Restored, it is sparse in the sandbox too, with the same content (the read-back hashed it).
    h.sh(h.a, "rm -f /sandbox/sparse.img")
    res = h.nemoclaw("backups", "restore", h.a)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1].startswith(f"  ✓ Restored '{h.a}' from {d.name}; ")
    assert h.sh(h.a, "sha256sum /sandbox/sparse.img").split()[0] == want
    used_kib = int(h.sh(h.a, "du -k /sandbox/sparse.img").split()[0])
    assert used_kib < 4096, used_kib
    assert h.sh(h.a, "ls /tmp") == ""  # the extents sent apart are gone


def _paused(h: Host, name: str, *args: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    marker = h.home / f"paused-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([h.exe, "backup-all", *args], env={**h.sim.env, **env, PAUSE_ENV: f"archive:{name}",
                                                               PAUSE_MARKER_ENV: str(marker)},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc, marker


@pytest.mark.parametrize("strict", [False, True])
def test_the_freeze_is_bounded_and_a_backup_past_it_is_not_point_in_time(h, strict):
    """The read is held (test hook) with the sandbox frozen, past a 1 s freeze limit: the
    sandbox is unfrozen while the run is still there, the state is read again live and the
    backup says it is not point-in-time; under --strict that sandbox's backup fails."""
    h.register(h.a)
    proc, marker = _paused(h, h.a, *(["--strict"] if strict else []), env={"NEMOCLAW_BACKUP_FREEZE_MAX_SECONDS": "1"})
    try:
        assert h.status(h.a) in ("paused", "running")
        deadline = time.monotonic() + 60
        while h.status(h.a) != "running":
            assert time.monotonic() < deadline, "the sandbox stayed frozen past the freeze limit"
            assert proc.poll() is None
            time.sleep(0.1)
        marker.unlink(missing_ok=True)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in err, err
    assert h.status(h.a) == "running"
    if strict:
        assert proc.returncode == 1, out + err
        assert (f"  ✗ {h.a}: backup failed (it stayed frozen for the freeze limit of 1 s "
                "(NEMOCLAW_BACKUP_FREEZE_MAX_SECONDS) and --strict asks for a point-in-time backup") in err, err
        assert h.committed(h.a) == []
    else:
        assert proc.returncode == 0, out + err
        assert (f"  ⚠ {h.a}: frozen for the freeze limit of 1 s (NEMOCLAW_BACKUP_FREEZE_MAX_SECONDS); "
                "its state was read again live, so this backup is not point-in-time") in err, err
        [d] = h.committed(h.a)
        assert json.loads((d / MANIFEST_NAME).read_text())["pointInTime"] is False


def test_a_freeze_limit_reached_while_the_archive_streams_unfreezes_at_once(h):
    """The engine keeps the container's lock while an archive stream is open: the frozen read
    is given up (its stream closed) before the unpause, which then goes through at once, and
    the state is read again live. 2 GiB of a sparse file's zeros take far longer than 0.2 s."""
    h.register(h.a)
    h.sh(h.a, f"dd if=/dev/zero of=/sandbox/sparse.img bs=1 count=0 seek={SPARSE} 2>/dev/null")
    res = h.nemoclaw("backup-all", env={"NEMOCLAW_BACKUP_FREEZE_MAX_SECONDS": "0.2"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Could not unpause" not in res.stderr, res.stderr
    assert (f"  ⚠ {h.a}: frozen for the freeze limit of 0.2 s (NEMOCLAW_BACKUP_FREEZE_MAX_SECONDS); "
            "its state was read again live, so this backup is not point-in-time") in res.stderr, res.stderr
    assert h.status(h.a) == "running"
    [d] = h.committed(h.a)
    assert json.loads((d / MANIFEST_NAME).read_text())["pointInTime"] is False
    assert os.stat(d / "sparse.img").st_size == SPARSE

    # A live read (--no-freeze) has no freeze to bound: the same limit changes nothing.
    shutil.rmtree(d)
    res = h.nemoclaw("backup-all", "--no-freeze", env={"NEMOCLAW_BACKUP_FREEZE_MAX_SECONDS": "0.2"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "freeze limit" not in res.stderr, res.stderr
    [d] = h.committed(h.a)
    assert json.loads((d / MANIFEST_NAME).read_text())["pointInTime"] is False


def test_a_rebuild_killed_while_it_restores_a_sparse_file_is_finished_sparse_by_the_next_run(h):
    """SIGKILL with the restore upload under way (the sparse file packed empty, its extents not
    yet sent): `runs resume` finishes the rebuild, and the file is whole and sparse again."""
    h.register(h.a)
    size = 256 << 20
    h.sh(h.a, f"dd if=/dev/zero of=/sandbox/sparse.img bs=1 count=0 seek={size} 2>/dev/null && "
              f"dd if=/dev/urandom of=/sandbox/sparse.img bs=4096 count=2 seek=1000 conv=notrunc 2>/dev/null")
    want = h.sh(h.a, "sha256sum /sandbox/sparse.img").split()[0]
    marker = h.home / f"pause-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([h.exe, "rebuild-sandbox", h.a], env={**h.sim.env, PAUSE_ENV: f"restore:{h.a}",
                                                                  PAUSE_MARKER_ENV: str(marker)},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    pid, run_id, _where = marker.read_text().split()
    os.kill(int(pid), signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    res = h.nemoclaw("runs", "resume", run_id)
    assert res.returncode == 0, res.stdout + res.stderr
    assert h.sh(h.a, "sha256sum /sandbox/sparse.img").split()[0] == want
    assert int(h.sh(h.a, "du -k /sandbox/sparse.img").split()[0]) < 4096
    assert h.sh(h.a, "ls -A /tmp") == ""
