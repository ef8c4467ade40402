"""Staging, atomic commit and sweep, with real files and real SIGKILLed processes (forked
children: tests/support/forked.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from orchestrator.store import StagingError, Staging, describe_sweep, sweep
from tests.support.forked import fork_call

FILES_PER_ITEM = 20


def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


def test_create_makes_private_dirs_and_owner_file(tmp_path):
    staging_root = tmp_path / "home" / ".nemoclaw" / "rebuild-backups" / ".staging"
    st = Staging.create(staging_root, "run-1")
    assert st.path == staging_root / "run-1"
    for p in (st.path, staging_root, staging_root.parent, staging_root.parent.parent):
        assert _mode(p) == 0o700, p
    owner = json.loads((st.path / ".owner.json").read_text())
    assert owner["pid"] == os.getpid()
    assert owner["host"] == socket.gethostname()
    assert owner["run_id"] == "run-1"
    assert owner["started_at"].endswith("Z")
    with pytest.raises(StagingError):
        Staging.create(staging_root, "run-1")
    with pytest.raises(StagingError):
        Staging.create(staging_root, "../escape")


def test_commit_moves_whole_dir_and_refuses_existing_dest(tmp_path):
    st = Staging.create(tmp_path / "b" / ".staging", "r1")
    d = st.dir_for("sb1")
    (d / "sub").mkdir()
    (d / "sub" / "f").write_text("data")
    dest = tmp_path / "b" / "sb1" / "2026-05-28T10-09-17-605Z"
    assert st.commit("sb1", dest) == dest
    assert (dest / "sub" / "f").read_text() == "data"
    assert not (st.path / "sb1").exists()
    assert _mode(dest.parent) == 0o700
    assert st.staged() == []

    d2 = st.dir_for("sb2")
    (d2 / "x").write_text("1")
    with pytest.raises(StagingError, match="already exists"):
        st.commit("sb2", dest)
    assert (d2 / "x").exists() and (dest / "sub" / "f").read_text() == "data"
    empty = tmp_path / "b" / "sb2" / "empty"
    empty.mkdir(parents=True)  # plain rename(2) would replace an empty directory
    with pytest.raises(StagingError, match="already exists"):
        st.commit("sb2", empty)
    assert (d2 / "x").exists()


def test_commit_refuses_symlinked_ancestor(tmp_path):
    st = Staging.create(tmp_path / "b" / ".staging", "r1")
    (st.dir_for("sb") / "f").write_text("x")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "b" / "sb").symlink_to(elsewhere)
    with pytest.raises(StagingError, match="symbolic link"):
        st.commit("sb", tmp_path / "b" / "sb" / "ts")
    assert list(elsewhere.iterdir()) == []


def test_discard_is_idempotent_and_never_follows_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    st = Staging.create(tmp_path / ".staging", "r1")
    d = st.dir_for("sb")
    (d / "link").symlink_to(outside)
    (d / "linkfile").symlink_to(outside / "keep")
    st.discard()
    st.discard()
    assert not st.path.exists()
    assert (outside / "keep").read_text() == "precious"
    assert list((tmp_path / ".staging").iterdir()) == []


# --- crash atomicity ---------------------------------------------------------------------------

def _crash_child(root: Path, kill_at: str, wait_after_a: bool = False) -> None:
    """In a forked child: stage and commit items `a` and `b`, SIGKILLing itself at `kill_at`
    (or, with `wait_after_a`, saying "committed a" and waiting for a line on stdin)."""
    from orchestrator.store import fsops
    from orchestrator.store.staging import Staging

    real_rename = fsops.rename_noreplace
    renames = []

    def die(point):
        if point == kill_at:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def rename(src, dst):
        renames.append(dst)
        die(f"before_rename_{len(renames)}")
        real_rename(src, dst)
        die(f"after_rename_{len(renames)}")

    fsops.rename_noreplace = rename  # in the child only
    st = Staging.create(root / ".staging", "run-crash")
    for item in ("a", "b"):
        d = st.dir_for(item)
        for i in range(FILES_PER_ITEM):
            sub = d / f"dir{i % 3}"
            sub.mkdir(exist_ok=True)
            (sub / f"f{i}").write_bytes(f"{item}-{i}".encode() * (i + 1))
            if i == FILES_PER_ITEM // 2:
                die(f"writing_{item}")
        die(f"staged_{item}")
        st.commit(item, root / "sb" / item)
        if wait_after_a:
            print(f"committed {item}", flush=True)
            if item == "a":
                sys.stdin.readline()
        die(f"committed_{item}")
    st.discard()
    print("done")


def _expected_files(item: str) -> dict[str, bytes]:
    return {f"dir{i % 3}/f{i}": f"{item}-{i}".encode() * (i + 1) for i in range(FILES_PER_ITEM)}


def _assert_complete_or_absent(path: Path, item: str) -> bool:
    if not path.exists():
        return False
    got = {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    assert got == _expected_files(item), f"{path} is committed but incomplete"
    return True


@pytest.mark.parametrize(
    "kill_at, committed, staged_left",
    [
        ("writing_a", (), ("a",)),
        ("staged_a", (), ("a",)),
        ("before_rename_1", (), ("a",)),
        ("after_rename_1", ("a",), ()),
        ("committed_a", ("a",), ()),  # between the two commits
        ("writing_b", ("a",), ("b",)),
        ("before_rename_2", ("a",), ("b",)),
        ("after_rename_2", ("a", "b"), ()),
    ],
)
def test_sigkill_never_leaves_a_partial_commit_and_sweep_removes_leftovers(tmp_path, kill_at, committed, staged_left):
    proc = fork_call(_crash_child, tmp_path, kill_at)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err
    present = tuple(item for item in ("a", "b") if _assert_complete_or_absent(tmp_path / "sb" / item, item))
    assert present == committed

    swept = sweep(tmp_path / ".staging")
    assert [s.run_id for s in swept] == ["run-crash"]
    assert swept[0].staged == staged_left
    assert swept[0].reason.startswith("pid ")
    assert describe_sweep(swept) == (
        f"  Removed leftovers of 1 interrupted run: run-crash ({len(staged_left)} staged dir"
        f"{'' if len(staged_left) == 1 else 's'})"
    )
    assert list((tmp_path / ".staging").iterdir()) == []
    assert sweep(tmp_path / ".staging") == []
    # Sweeping never touches committed backups.
    assert tuple(i for i in ("a", "b") if _assert_complete_or_absent(tmp_path / "sb" / i, i)) == committed


def test_external_sigkill_while_staging_leaves_previous_set(tmp_path):
    """The parent SIGKILLs the child right after letting it go on from `a`'s commit to staging
    and committing `b`: wherever the kill lands, `a` is complete and `b` absent or complete."""
    proc = fork_call(_crash_child, tmp_path, "never", True)
    assert proc.stdout.readline().strip() == "committed a"
    proc.stdin.write("go\n")
    proc.stdin.flush()
    proc.kill()
    proc.wait()
    assert _assert_complete_or_absent(tmp_path / "sb" / "a", "a")
    _assert_complete_or_absent(tmp_path / "sb" / "b", "b")
    swept = sweep(tmp_path / ".staging")
    assert [s.run_id for s in swept] == ["run-crash"]
    assert not (tmp_path / ".staging" / "run-crash").exists()


# --- sweep -------------------------------------------------------------------------------------


def test_sweep_removes_dead_runs_and_keeps_live_ones(tmp_path):
    root = tmp_path / ".staging"
    live = Staging.create(root, "live-run")
    (live.dir_for("sb") / "f").write_text("x")
    # A dead run: a real process that created its area and exited without discarding it.

    def dead_run() -> None:
        s = Staging.create(root, "dead-run")
        s.dir_for("x")
        s.dir_for("y")

    child = fork_call(dead_run)
    child.communicate()
    assert child.returncode == 0
    assert (root / "dead-run").is_dir()

    swept = sweep(root)
    assert [(s.run_id, s.staged) for s in swept] == [("dead-run", ("x", "y"))]
    assert describe_sweep(swept) == "  Removed leftovers of 1 interrupted run: dead-run (2 staged dirs)"
    assert (live.path / "sb" / "f").read_text() == "x"
    assert not (root / "dead-run").exists()


def test_sweep_detects_recycled_pid_and_corrupt_owner_files(tmp_path):
    root = tmp_path / ".staging"
    live = Staging.create(root, "recycled")
    owner = json.loads((live.path / ".owner.json").read_text())
    owner["proc_start"] = (owner["proc_start"] or 0) + 12345  # our pid, but another process's start
    (live.path / ".owner.json").write_text(json.dumps(owner))

    for name in ("corrupt-old", "corrupt-new", "no-owner-old"):
        (root / name / "staged").mkdir(parents=True)
    (root / "corrupt-old" / ".owner.json").write_text("{not json")
    (root / "corrupt-new" / ".owner.json").write_text('{"pid": "x"}')
    old = time.time() - 7200
    for name in ("corrupt-old", "no-owner-old"):
        os.utime(root / name, (old, old))
    swept = {s.run_id: s for s in sweep(root, grace_seconds=3600)}
    assert set(swept) == {"recycled", "corrupt-old", "no-owner-old"}
    assert "corrupt" in swept["corrupt-old"].reason
    assert "missing" in swept["no-owner-old"].reason
    assert (root / "corrupt-new").is_dir()
    assert describe_sweep(list(swept.values())).startswith("  Removed leftovers of 3 interrupted runs: ")


def test_sweep_never_follows_symlinks(tmp_path):
    root = tmp_path / ".staging"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    (root / "dead" / "sb").mkdir(parents=True)
    (root / "dead" / ".owner.json").write_text(json.dumps(
        {"pid": 2**22 + 7, "host": socket.gethostname(), "run_id": "dead", "started_at": "x"}))
    (root / "dead" / "sb" / "link").symlink_to(outside)
    (root / "toplink").symlink_to(outside)  # not a directory entry: left alone
    swept = sweep(root)
    assert [s.run_id for s in swept] == ["dead"]
    assert (outside / "keep").read_text() == "precious"
    assert (root / "toplink").is_symlink()
