"""Writing into a sandbox container, shared by both restore scopes (restore.py, home_scope.py):
commands run as uid 0, the owner of a directory, and the backup streamed in with `put_archive`."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from .archive import ProgressCallback, pack_directory
from .errors import RestoreError
from .manifest import Manifest

__all__ = ["exec_root", "owner_of", "stream_in"]


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
        stream = pack_directory(backup_dir, names, modes=manifest.file_modes(), owner=owner,
                                under=base.strip("/"), on_progress=track)
        try:
            container.put_archive("/", stream)
        except docker.errors.APIError as exc:
            raise RestoreError(f"writing the backup into {container.name}:{base} failed: {exc}") from exc
    return progress["files"], progress["bytes"]
