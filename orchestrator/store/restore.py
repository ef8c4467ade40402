"""Write a backup back into a sandbox container, then prove it arrived intact.

Restore makes each backed-up state directory (and state file) in the sandbox *equal* to the
backup: it is first removed inside the container (`rm -rf` through exec), then the backup is
streamed in with `put_archive` (a generator: never the whole archive in memory). So files that
exist in the container but not in the backup are gone afterwards. State directories the backup
does not contain (absent when it was taken) are left untouched: there is nothing to restore
there, and removing them could only lose data.

Then every restored path is read back with `get_archive` and hashed without writing anything
(`archive.hash_stream`); any difference from the manifest (missing, extra, size, SHA-256, mode,
symlink target) is reported as the result's `mismatch`.

Files are owned by the owner (uid, gid) of the agent's directory in the sandbox, so the
sandbox user can keep writing its state.
"""

from __future__ import annotations

import posixpath
import shlex
from pathlib import Path
from typing import Any

import attrs
import docker.errors

from .archive import ArchiveResult, ProgressCallback, hash_stream, pack_directory
from .errors import ArchiveError, RestoreError
from .manifest import Manifest, Mismatch, diff_records, load_manifest

__all__ = ["RestoreResult", "restore_backup", "read_back"]


@attrs.frozen
class RestoreResult:
    restored: list[str]  # names relative to the agent dir (`agents`, `runtime/state.db`)
    files: int
    bytes: int
    mismatch: Mismatch | None

    @property
    def ok(self) -> bool:
        return self.mismatch is None


def _exec(container: Any, argv: list[str]) -> str:
    rc, out = container.exec_run(argv, user="root")
    text = (out or b"").decode(errors="replace").strip()
    if rc != 0:
        raise RestoreError(f"`{shlex.join(argv)}` failed in sandbox container {container.name} (exit {rc}): {text}")
    return text


def _owner_of(container: Any, path: str) -> tuple[int, int]:
    out = _exec(container, ["stat", "-c", "%u %g", path])
    try:
        uid, gid = (int(x) for x in out.split())
    except ValueError:
        raise RestoreError(f"cannot tell the owner of {path} in {container.name}: {out!r}") from None
    return uid, gid


def restore_names(backup_dir: Path, manifest: Manifest) -> list[str]:
    """What a restore writes: the backed-up dirs and captured state files present in the backup
    (for a whole-home backup: the home's top-level entries, home_scope.py)."""
    if manifest.scope == "home":
        from .home_scope import home_restore_names

        return home_restore_names(manifest)
    files = {f.path for f in manifest.files}
    names = [d for d in manifest.backed_up_dirs if (backup_dir / d).is_dir() and not (backup_dir / d).is_symlink()]
    names += [s.path for s in manifest.state_files if s.path in files]
    return names


def restore_backup(
    container: Any,
    backup_dir: Path,
    manifest: Manifest | None = None,
    *,
    owner: tuple[int, int] | None = None,
    on_progress: ProgressCallback | None = None,
    verify: bool = True,
) -> RestoreResult:
    """Restore `backup_dir` into `container` (a docker SDK Container) at `manifest.dir`.

    Raises RestoreError if the container refuses a step; returns the read-back check's first
    mismatch in `result.mismatch` (None when everything hashes to the manifest).
    """
    backup_dir = Path(backup_dir)
    manifest = manifest or load_manifest(backup_dir)
    if manifest.scope == "home":
        from .home_scope import restore_home

        names, files, nbytes = restore_home(container, backup_dir, manifest, owner=owner, on_progress=on_progress)
        mismatch = read_back(container, manifest, names) if verify else None
        return RestoreResult(restored=names, files=files, bytes=nbytes, mismatch=mismatch)
    names = restore_names(backup_dir, manifest)
    base = manifest.dir
    _exec(container, ["mkdir", "-p", "--", base])
    if owner is None:
        owner = _owner_of(container, base)
    if names:
        _exec(container, ["rm", "-rf", "--", *(posixpath.join(base, n) for n in names)])
    progress = {"bytes": 0, "files": 0}

    def track(b: int, f: int) -> None:
        progress["bytes"], progress["files"] = b, f
        if on_progress is not None:
            on_progress(b, f)

    if names:
        stream = pack_directory(backup_dir, names, modes=manifest.file_modes(), owner=owner, on_progress=track)
        try:
            container.put_archive(base, stream)
        except docker.errors.APIError as exc:
            raise RestoreError(f"writing the backup into {container.name}:{base} failed: {exc}") from exc
    mismatch = read_back(container, manifest, names) if verify else None
    return RestoreResult(restored=names, files=progress["files"], bytes=progress["bytes"], mismatch=mismatch)


def read_back(container: Any, manifest: Manifest, names: list[str]) -> Mismatch | None:
    """Re-read `names` from the container (hash only, nothing written) and compare them with
    the manifest, file modes included (a whole-home backup: the whole home)."""
    if manifest.scope == "home":
        from .home_scope import read_back_home

        return read_back_home(container, manifest)
    got = ArchiveResult()
    for name in names:
        parent, leaf = posixpath.split(name)
        try:
            chunks, _stat = container.get_archive(posixpath.join(manifest.dir, name))
            res = hash_stream(chunks, prefix=parent, only_under=leaf)
        except docker.errors.NotFound:
            return Mismatch(name, "missing")
        except (docker.errors.APIError, ArchiveError) as exc:
            raise RestoreError(f"reading back {name} from {container.name} failed: {exc}") from exc
        if res.rejected:
            r = res.rejected[0]
            return Mismatch(r.path, "rejected", None, r.reason)
        got.merge(res)

    def under(path: str) -> bool:
        return any(path == n or path.startswith(n + "/") for n in names)

    return diff_records(
        [f for f in manifest.files if under(f.path)],
        [s for s in manifest.symlinks if under(s.path)],
        got.files,
        got.symlinks,
        check_modes=True,
    )
