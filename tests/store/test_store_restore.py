"""The whole backup path against a real sandbox container: capture → manifest → verify → commit,
then restore into the changed container and read it back."""

from __future__ import annotations

import os

import pytest

from orchestrator.kernel.paths import Paths
from orchestrator.adapters.agents.definitions import load_agent
from orchestrator.store import (
    BackupStore,
    Staging,
    build_manifest,
    capture_sandbox,
    load_manifest,
    new_timestamp,
    read_back,
    restore_backup,
    verify,
    write_manifest,
)

pytestmark = pytest.mark.docker

SETUP = """
set -e
mkdir -p /sandbox/.openclaw/agents/main/sessions /sandbox/.openclaw/workspace/notes /sandbox/.openclaw/memory
cd /sandbox/.openclaw
echo '{"token":"keep-out"}' > openclaw.json
echo session-1 > agents/main/sessions/s1.jsonl
head -c 200000 /dev/urandom > agents/main/sessions/blob
echo note > workspace/notes/n.md
chmod 640 workspace/notes/n.md
ln -s notes/n.md workspace/latest
: > memory/empty
chown -R 1000:1000 /sandbox/.openclaw
"""


@pytest.fixture
def sandbox(docker_client, base_image, unique):
    c = docker_client.containers.run(base_image, ["sleep", "600"], name=f"openshell-store-{unique}",
                                     network_mode="none", detach=True)
    try:
        rc, out = c.exec_run(["sh", "-c", SETUP])
        assert rc == 0, out.decode()
        yield c
    finally:
        c.remove(force=True)


def _sums(c, *dirs: str) -> dict[str, str]:
    rc, out = c.exec_run(["sh", "-c", f"cd /sandbox/.openclaw && find {' '.join(dirs)} -type f | xargs sha256sum"])
    assert rc == 0, out.decode()
    return {path: digest for digest, path in (line.split() for line in out.decode().splitlines())}


def test_backup_commit_restore_round_trip(sandbox, tmp_path):
    paths = Paths(home=tmp_path)
    agent = load_agent("openclaw")
    store = BackupStore(paths.backups_root, load_agent)
    staging = Staging.create(paths.staging_root, "run-1")
    ts = new_timestamp()
    dest = store.dest_for("alpha", ts)

    cap = capture_sandbox(sandbox, agent, staging.dir_for("alpha"))
    assert cap.ok, (cap.failed_dirs, cap.archive.rejected)
    assert cap.backed_up_dirs == ["agents", "workspace", "memory"]  # the others do not exist
    m = build_manifest(cap, agent, sandbox="alpha", timestamp=ts, backup_path=dest)
    write_manifest(staging.dir_for("alpha"), m)
    assert verify(staging.dir_for("alpha"), m) is None
    staging.commit("alpha", dest)
    staging.discard()

    [backup] = store.list("alpha")
    assert backup.path == dest and backup.manifest == m
    assert not (dest / "openclaw.json").exists()  # only declared state dirs are taken
    original = _sums(sandbox, "agents", "workspace", "memory")
    assert {f.path: f.sha256 for f in m.files} == original

    rc, _ = sandbox.exec_run(["sh", "-c", """
        cd /sandbox/.openclaw
        echo tampered > agents/main/sessions/s1.jsonl
        rm workspace/notes/n.md
        echo new > workspace/extra
        mkdir -p agents/other && echo x > agents/other/y
    """])
    assert rc == 0
    assert _sums(sandbox, "agents", "workspace", "memory") != original

    result = restore_backup(sandbox, dest, agents=load_agent)
    assert result.ok, result.mismatch
    assert result.restored == ["agents", "workspace", "memory"] and result.files == len(m.files)
    assert _sums(sandbox, "agents", "workspace", "memory") == original  # extra files are gone too
    rc, out = sandbox.exec_run(["sh", "-c", "cd /sandbox/.openclaw && stat -c '%u:%g %a %n' workspace/notes/n.md "
                                             "agents/main && readlink workspace/latest && cat openclaw.json"])
    assert out.decode().split("\n")[:4] == ["1000:1000 640 workspace/notes/n.md", "1000:1000 755 agents/main",
                                             "notes/n.md", '{"token":"keep-out"}']

    sandbox.exec_run(["sh", "-c", "echo drift >> /sandbox/.openclaw/workspace/notes/n.md"])
    mm = read_back(sandbox, load_manifest(dest), result.restored)
    assert mm is not None and (mm.path, mm.kind) == ("workspace/notes/n.md", "size")


def test_hermes_state_files_round_trip(sandbox, tmp_path):
    rc, out = sandbox.exec_run(["sh", "-c", """
        set -e
        mkdir -p /sandbox/.hermes/memories /sandbox/.hermes/runtime
        echo soul > /sandbox/.hermes/SOUL.md
        echo m > /sandbox/.hermes/memories/m1
        head -c 9000 /dev/urandom > /sandbox/.hermes/runtime/state.db
        chown -R 1000:1000 /sandbox/.hermes
    """])
    assert rc == 0, out.decode()
    agent = load_agent("hermes")
    dest = tmp_path / "b"
    dest.mkdir()
    cap = capture_sandbox(sandbox, agent, dest)
    assert cap.ok and [f.path for f in cap.backed_up_files] == ["SOUL.md", "runtime/state.db"]
    m = build_manifest(cap, agent, sandbox="h", timestamp=new_timestamp(), backup_path=dest)
    write_manifest(dest, m)
    sandbox.exec_run(["sh", "-c", "rm -rf /sandbox/.hermes/runtime /sandbox/.hermes/SOUL.md"])
    result = restore_backup(sandbox, dest, agents=load_agent)
    assert result.ok, result.mismatch
    rc, out = sandbox.exec_run(["stat", "-c", "%u", "/sandbox/.hermes/runtime/state.db"])
    assert out.decode().strip() == "1000"


def test_capture_records_links_and_modes_and_skips_special_files(sandbox, tmp_path):
    """Record what a sandbox holds, refuse only what is dangerous: an absolute link (a Python
    venv's interpreter), a link leaving the tree, a hard link, a setuid file, a FIFO and a
    device node make a committable backup that restores as it was."""
    rc, out = sandbox.exec_run(["sh", "-c", """
        set -e
        cd /sandbox/.openclaw/agents
        mkdir -p venv/bin
        ln -s /usr/bin/python3 venv/bin/python
        ln -s ../../../etc/passwd pw
        ln main/sessions/s1.jsonl hard
        cp /bin/busybox suid && chmod 4755 suid
        mkdir shared && chmod 1777 shared
        mknod dev c 1 3
        mkfifo pipe
    """])
    assert rc == 0, out.decode()
    agent = load_agent("openclaw")
    dest = tmp_path / "b"
    dest.mkdir()
    cap = capture_sandbox(sandbox, agent, dest)
    assert cap.ok, (cap.failed_dirs, cap.archive.rejected)
    assert "agents" in cap.backed_up_dirs
    assert {(r.path, r.reason) for r in cap.archive.skipped} == {("agents/dev", "device node"), ("agents/pipe", "FIFO")}
    links = {s.path: s.target for s in cap.archive.symlinks}
    assert links["agents/venv/bin/python"] == "/usr/bin/python3" and links["agents/pw"] == "../../../etc/passwd"
    files = {f.path: f for f in cap.archive.files}
    assert files["agents/hard"].sha256 == files["agents/main/sessions/s1.jsonl"].sha256
    assert files["agents/suid"].mode == 0o4755
    assert {d.path: d.mode for d in cap.archive.dirs}["agents/shared"] == 0o1777
    assert os.readlink(dest / "agents/venv/bin/python") == "/usr/bin/python3"
    assert os.stat(dest / "agents/suid").st_mode & 0o7000 == 0  # no setuid file on the host

    m = build_manifest(cap, agent, sandbox="alpha", timestamp=new_timestamp(), backup_path=dest)
    write_manifest(dest, m)
    assert load_manifest(dest) == m
    sandbox.exec_run(["sh", "-c", "rm -rf /sandbox/.openclaw/agents"])
    result = restore_backup(sandbox, dest, agents=load_agent)
    assert result.ok, result.mismatch
    rc, out = sandbox.exec_run(["sh", "-c", "cd /sandbox/.openclaw/agents && readlink venv/bin/python && readlink pw && "
                                             "stat -c '%a %F' suid shared hard && ls"])
    lines = out.decode().splitlines()
    assert lines[:5] == ["/usr/bin/python3", "../../../etc/passwd", "4755 regular file", "1777 directory",
                         "644 regular file"], lines
    assert "dev" not in lines and "pipe" not in lines


def _backup(sandbox, tmp_path):
    paths = Paths(home=tmp_path)
    agent = load_agent("openclaw")
    staging = Staging.create(paths.staging_root, "run-x")
    ts = new_timestamp()
    dest = BackupStore(paths.backups_root, load_agent).dest_for("alpha", ts)
    cap = capture_sandbox(sandbox, agent, staging.dir_for("alpha"))
    write_manifest(staging.dir_for("alpha"), build_manifest(cap, agent, sandbox="alpha", timestamp=ts, backup_path=dest))
    staging.commit("alpha", dest)
    staging.discard()
    return dest


def test_restore_runs_as_uid_0_in_an_image_without_etc_passwd(sandbox, tmp_path):
    dest = _backup(sandbox, tmp_path)
    rc, out = sandbox.exec_run(["sh", "-c", "rm /etc/passwd && echo x > /sandbox/.openclaw/workspace/notes/n.md"])
    assert rc == 0, out.decode()
    result = restore_backup(sandbox, dest, agents=load_agent)
    assert result.ok, result.mismatch


def test_restore_refuses_a_manifest_whose_dir_is_not_the_agents(sandbox, tmp_path):
    import json

    from orchestrator.store import MANIFEST_NAME, ManifestError

    dest = _backup(sandbox, tmp_path)
    (dest / "bin").mkdir()
    doc = json.loads((dest / MANIFEST_NAME).read_text())
    doc.update(dir="/usr/local", stateDirs=doc["stateDirs"] + ["bin"], backedUpDirs=doc["backedUpDirs"] + ["bin"])
    (dest / MANIFEST_NAME).write_text(json.dumps(doc))
    rc, before = sandbox.exec_run(["ls", "/usr/local/bin", "/bin/sh"])
    with pytest.raises(ManifestError, match="is not the openclaw agent's directory"):
        restore_backup(sandbox, dest, agents=load_agent)
    assert sandbox.exec_run(["ls", "/usr/local/bin", "/bin/sh"]) == (rc, before)  # nothing was wiped


def test_the_home_read_back_asks_the_engine_for_an_uncompressed_stream(sandbox):
    # requests asks for `gzip, deflate` by default, and the engine then compresses the archive
    # it streams: CPU on both sides for a stream that never leaves the machine (a fifth of a
    # whole-home restore's time was gzip). The read-back must ask for the plain tar.
    from orchestrator.store.home_scope import _archive_response

    res = _archive_response(sandbox, "/sandbox/.")
    try:
        assert res.status_code == 200
        assert res.headers.get("Content-Encoding", "identity") == "identity"
        assert res.raw.read(262)[257:262] == b"ustar"  # the first header, as sent: a plain tar
    finally:
        res.close()
