"""Writing into a sandbox container, shared by both restore scopes (restore.py, home_scope.py):
commands run as uid 0, the owner of a directory, and the backup streamed in with `put_archive`.

Sparse files keep their holes: Docker's `put_archive` writes every byte it is given, so a backed-up
file that is mostly holes (it saves at least `SPARSE_MIN_SAVING` on disk, its data extents lie on
4 KiB boundaries, at most `MAX_EXTENTS` of them, no setuid/setgid bit) is packed empty, its data
extents are sent apart under `/tmp`, and `dd conv=notrunc` and `truncate` in the sandbox put them
at their offsets and give the file its size (docs/backups.md). A sandbox without `dd` or
`truncate` gets the file whole, as before.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shlex
import stat
import uuid
from pathlib import Path
from typing import Any

from .archive import ProgressCallback, pack_directory, pack_ranges
from .errors import RestoreError
from .manifest import Manifest

__all__ = ["exec_root", "owner_of", "stream_in", "sparse_extents"]

SPARSE_MIN_SAVING = 1 << 20
MAX_EXTENTS = 256
_ALIGN = 4096


def exec_root(container: Any, argv: list[str], *, shown: int | None = None) -> str:
    """Run `argv` in the container as uid 0 (not the name `root`: an image without /etc/passwd
    cannot resolve it); its output, or RestoreError naming the command (its first `shown` words)."""
    rc, out = container.exec_run(argv, user="0")
    text = (out or b"").decode(errors="replace").strip()
    if rc != 0:
        cmd = shlex.join(argv) if shown is None else f"{shlex.join(argv[:shown])} ..."
        raise RestoreError(f"`{cmd}` failed in sandbox container {container.name} (exit {rc}): {text}")
    return text


def owner_of(container: Any, path: str) -> tuple[int, int]:
    out = exec_root(container, ["stat", "-c", "%u %g", path])
    try:
        uid, gid = (int(x) for x in out.split())
    except ValueError:
        raise RestoreError(f"cannot tell the owner of {path} in {container.name}: {out!r}") from None
    return uid, gid


def stream_in(container: Any, backup_dir: Path, manifest: Manifest, names: list[str], base: str, *,
              owner: tuple[int, int], on_progress: ProgressCallback | None = None) -> tuple[int, int]:
    """Stream `names` of the backup into `base` in the container with the manifest's modes and
    `owner`; returns (files, bytes). Extracted at `/` with names under `base`: Docker refuses a
    relative symlink that leaves the directory put_archive extracts into, and a sandbox may hold
    such links (docs/reference/archive-policy.md); `/` contains every one of them."""
    import docker.errors  # here, not at import: commands that never restore never load docker

    progress = {"bytes": 0, "files": 0}

    def track(b: int, f: int) -> None:
        progress["bytes"], progress["files"] = b, f
        if on_progress is not None:
            on_progress(b, f)

    if names:
        plan = _sparse_plan(backup_dir, manifest, names)
        if plan and not _has_tools(container):
            plan = {}
        stream = pack_directory(backup_dir, names, modes=manifest.file_modes(), owner=owner,
                                under=base.strip("/"), on_progress=track, empty=plan)
        try:
            container.put_archive("/", stream)
            if plan:
                _write_extents(container, backup_dir, plan, base)
        except docker.errors.APIError as exc:
            raise RestoreError(f"writing the backup into {container.name}:{base} failed: {exc}") from exc
    return progress["files"], progress["bytes"]


def sparse_extents(path: Path) -> tuple[int, list[tuple[int, int]]] | None:
    """(size, data extents as (offset, length)) of a file worth restoring sparse, else None."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o6000 or st.st_blocks * 512 + SPARSE_MIN_SAVING > st.st_size:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        out: list[tuple[int, int]] = []
        pos = 0
        while pos < st.st_size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole is left
                    break
                return None  # no SEEK_DATA on this filesystem: write it whole
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, end - start))
            pos = end
            if len(out) > MAX_EXTENTS or start % _ALIGN:
                return None
        return st.st_size, out
    finally:
        os.close(fd)


def _sparse_plan(backup_dir: Path, manifest: Manifest, names: list[str]) -> dict[str, tuple[int, list[tuple[int, int]]]]:
    def under(path: str) -> bool:
        return any(path == n or path.startswith(n + "/") for n in names)

    plan = {}
    for f in manifest.files:
        if f.size > SPARSE_MIN_SAVING and under(f.path):
            ext = sparse_extents(backup_dir / f.path)
            if ext is not None:
                plan[f.path] = ext
    return plan


def _has_tools(container: Any) -> bool:
    rc, _out = container.exec_run(["sh", "-c", "command -v dd && command -v truncate"], user="0")
    return bool(rc == 0)


def _write_extents(container: Any, backup_dir: Path, plan: dict[str, tuple[int, list[tuple[int, int]]]],
                   base: str) -> None:
    """Send the data extents of the files packed empty, then put them in place in the sandbox."""
    tmp = f"tmp/.nemoclaw-sparse-{uuid.uuid4().hex[:12]}"
    items: list[tuple[str, Path, int, int]] = []
    # (what a killed restore left there goes too: restores into one sandbox never overlap, they hold the writer lock)
    lines = [f"trap 'rm -rf /{tmp}' EXIT", "set -e",
             f'for d in /tmp/.nemoclaw-sparse-*; do [ "$d" = /{tmp} ] || rm -rf -- "$d"; done']
    for i, (rel, (size, extents)) in enumerate(sorted(plan.items())):
        target = shlex.quote(posixpath.join(base, rel))
        for j, (off, length) in enumerate(extents):
            name = f"{tmp}/{i}-{j}"
            items.append((name, backup_dir / rel, off, length))
            lines.append(f"dd if=/{name} of={target} bs={_ALIGN} seek={off // _ALIGN} conv=notrunc 2>/dev/null")
        lines.append(f"truncate -s {size} {target}")
    container.put_archive("/", pack_ranges(items))
    exec_root(container, ["sh", "-c", "\n".join(lines) + "\n"], shown=2)
