"""Write a backup back into a sandbox container, then prove it arrived intact.

Restore makes each backed-up state directory (and state file) in the sandbox *equal* to the
backup: it is first removed inside the container (`rm -rf` through exec), then the backup is
streamed in with `put_archive` (a generator: never the whole archive in memory). So files that
exist in the container but not in the backup are gone afterwards. State directories the backup
does not contain (absent when it was taken) are left untouched: there is nothing to restore
there, and removing them could only lose data.

Then every restored path is read back with `get_archive` (several at once) and hashed without
writing anything (`archive.hash_stream`); any difference from the manifest (missing, extra, size, SHA-256, mode,
symlink target) is reported as the result's `mismatch`.

Files are owned by the owner (uid, gid) of the agent's directory in the sandbox, so the
sandbox user can keep writing its state.
"""

from __future__ import annotations

import posixpath
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from collections.abc import Callable
from typing import Any

import attrs

from ..kernel.paths import rebase
from .archive import ArchiveResult, ProgressCallback, hash_stream
from .container_write import exec_root, owner_of, stream_in
from .errors import ArchiveError, RestoreError
from .manifest import Manifest, Mismatch, check_against_agent, diff_records, load_manifest

__all__ = ["RestoreResult", "restore_backup", "read_back"]

_READ_BACK_THREADS = 4


@attrs.frozen
class RestoreResult:
    restored: list[str]  # names relative to the agent dir (`agents`, `runtime/state.db`)
    files: int
    bytes: int
    mismatch: Mismatch | None

    @property
    def ok(self) -> bool:
        return self.mismatch is None


def restore_names(backup_dir: Path, manifest: Manifest) -> list[str]:
    """What a restore writes: every backed-up dir and captured state file (for a whole-home
    backup: the home's top-level entries, home_scope.py). One that is missing from the backup is
    an error, never silently skipped."""
    if manifest.scope == "home":
        from .home_scope import home_restore_names

        return home_restore_names(manifest)
    for d in manifest.backed_up_dirs:
        p = backup_dir / d
        if not p.is_dir() or p.is_symlink():
            raise RestoreError(f"backup {backup_dir} lacks its backed-up directory {d!r}; refusing to restore")
    files = {f.path for f in manifest.files}
    for sf in manifest.state_files:
        if sf.path not in files:
            raise RestoreError(f"backup {backup_dir} lacks its state file {sf.path!r}; refusing to restore")
    return [*manifest.backed_up_dirs, *(s.path for s in manifest.state_files)]


def restore_backup(
    container: Any,
    backup_dir: Path,
    manifest: Manifest | None = None,
    *,
    owner: tuple[int, int] | None = None,
    on_progress: ProgressCallback | None = None,
    on_read_back: ProgressCallback | None = None,
    verify: bool = True,
    data_root: str | None = None,
    agents: Callable[[str], Any],
) -> RestoreResult:
    """Restore `backup_dir` into `container` (a docker SDK Container) at `manifest.dir`, moved
    under the container's `data_root` (OpenShell >= 0.0.99; the manifest keeps the agent's
    canonical `/sandbox/...` directory, which is what is checked against the agent that
    `agents(manifest.agent_type)` gives: the backup is untrusted input).

    Raises RestoreError if the container refuses a step; returns the read-back check's first
    mismatch in `result.mismatch` (None when everything hashes to the manifest). `on_progress`
    gets the (bytes, files) written so far, `on_read_back` those read back so far.
    """
    backup_dir = Path(backup_dir)
    manifest = manifest or load_manifest(backup_dir)
    # Untrusted input: `dir` and every name must be the agent's own (docs/backups.md).
    check_against_agent(manifest, agents(manifest.agent_type), backup_dir)
    base = rebase(manifest.dir, data_root)
    if manifest.scope == "home":
        from .home_scope import restore_home

        names, files, nbytes = restore_home(container, backup_dir, manifest, owner=owner, on_progress=on_progress,
                                            data_root=data_root)
    else:
        names = restore_names(backup_dir, manifest)
        exec_root(container, ["mkdir", "-p", "--", base])
        if owner is None:
            owner = owner_of(container, base)
        if names:
            exec_root(container, ["rm", "-rf", "--", *(posixpath.join(base, n) for n in names)])
        files, nbytes = stream_in(container, backup_dir, manifest, names, base, owner=owner, on_progress=on_progress)
    mismatch = read_back(container, manifest, names, base=base, on_progress=on_read_back) if verify else None
    return RestoreResult(restored=names, files=files, bytes=nbytes, mismatch=mismatch)


def read_back(container: Any, manifest: Manifest, names: list[str], *, base: str | None = None,
              on_progress: ProgressCallback | None = None) -> Mismatch | None:
    """Re-read `names` from the container (hash only, nothing written) and compare them with
    the manifest, file modes included; `base` is where the agent dir (for a whole-home backup:
    the home) is in this container (default the manifest's own). `on_progress` gets the
    (bytes, files) read so far, over all the concurrent streams."""
    if manifest.scope == "home":
        from .home_scope import read_back_home

        return read_back_home(container, manifest, base=base, on_progress=on_progress)
    base = base or manifest.dir
    import docker.errors

    totals: dict[str, tuple[int, int]] = {}
    lock = threading.Lock()

    def progress_of(name: str) -> ProgressCallback | None:
        if on_progress is None:
            return None

        def report(nbytes: int, files: int) -> None:
            with lock:
                totals[name] = (nbytes, files)
                on_progress(sum(b for b, _ in totals.values()), sum(f for _, f in totals.values()))

        return report

    def one(name: str) -> ArchiveResult | Mismatch:
        parent, leaf = posixpath.split(name)
        try:
            chunks, _stat = container.get_archive(posixpath.join(base, name))
            return hash_stream(chunks, prefix=parent, only_under=leaf, on_progress=progress_of(name))
        except docker.errors.NotFound:
            return Mismatch(name, "missing")
        except (docker.errors.APIError, ArchiveError) as exc:
            raise RestoreError(f"reading back {name} from {container.name} failed: {exc}") from exc

    got = ArchiveResult()
    with ThreadPoolExecutor(max_workers=min(_READ_BACK_THREADS, max(1, len(names))), thread_name_prefix="read-back") as pool:
        results = list(pool.map(one, names))  # concurrently: the engine builds each tar on its own
    for res in results:
        if isinstance(res, Mismatch):
            return res
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
