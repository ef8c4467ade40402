"""Test backups for the off-host copy tests, made the way backup-all makes them (the tree through
the archive code, the manifest from a Capture), and small readers of the result."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from orchestrator.adapters.agents.definitions import load_agent
from orchestrator.store.capture import Capture, build_manifest
from orchestrator.store.manifest import write_manifest

from tests.support.backup_tree import extract_backup_files
from tests.support.cli import NEMOCLAW

TS1, TS2, TS3 = "2026-05-01T00-00-00-000Z", "2026-05-02T00-00-00-000Z", "2026-05-03T00-00-00-000Z"


def files_of(seed: str, n: int = 6, size: int = 64 * 1024) -> dict[str, bytes]:
    """Deterministic incompressible files (restic compresses nothing in repository format 1, and
    random-looking data keeps the size arithmetic honest)."""
    out: dict[str, bytes] = {}
    for i in range(n):
        block = b"".join(hashlib.sha256(f"{seed}-{i}-{j}".encode()).digest() for j in range(size // 32))
        out[f"workspace/dir{i % 2}/f{i}.bin"] = block
    out["agents/main/s.jsonl"] = f"session {seed}\n".encode()
    return out


def make_backup(home: Path, sandbox: str, ts: str, files: dict[str, bytes]) -> Path:
    root = home / ".nemoclaw" / "rebuild-backups"
    dest, tops, extracted = extract_backup_files(root, sandbox, ts, files)
    agent = load_agent("openclaw")
    cap = Capture(state_dirs=list(agent.state_dirs), backed_up_dirs=tops)
    cap.archive.merge(extracted)
    write_manifest(dest, build_manifest(cap, agent, sandbox=sandbox, timestamp=ts, backup_path=dest))
    return dest


def tree(path: Path) -> dict[str, tuple[str, int, bytes]]:
    """Every entry under `path`: (kind, permission bits, content or link target)."""
    out: dict[str, tuple[str, int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(path))
            st = os.lstat(p)
            if p.is_symlink():
                out[rel] = ("link", 0, os.readlink(p).encode())
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777, b"")
            else:
                out[rel] = ("file", st.st_mode & 0o7777, p.read_bytes())
    return out


def du(path: Path) -> int:
    """Bytes of the files under `path` (a local repository's size)."""
    return sum(os.lstat(Path(d) / f).st_size for d, _, fs in os.walk(path) for f in fs)


def popen(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([NEMOCLAW, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def backup_dirs(home: Path, sandbox: str) -> list[str]:
    d = home / ".nemoclaw" / "rebuild-backups" / sandbox
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []
