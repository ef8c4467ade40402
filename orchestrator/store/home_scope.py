"""The whole-home backup scope: the sandbox home (`/sandbox`), minus declared runtime files.

Users lost files outside the agent's declared state dirs (NemoClaw #2882, #5027; upstream's
recreate warns that `/sandbox/user-data` is not preserved), so upstream moved to one archive of
the whole home/workspace (#11767). In our words, with the details: docs/reference/whole-home.md.

Capture reads `<home>/.` with one `get_archive` (entries come relative to the home) through the
same hostile-entry checks as every backup (`archive.extract_stream`), leaving out the agent's
`home_excludes` (its pid/lock files and NemoClaw's per-install config, which belong to the new
sandbox). The staged tree and manifest have the usual format; the manifest says
`scope: home`, `dir: <home>` and lists the `excludes`.

Restore makes the home equal to the backup, except the excluded paths, which are left as the
target sandbox has them: everything else in the home is removed (never following a symlink),
the backup is streamed in, and the whole home is read back and compared with the manifest.
"""

from __future__ import annotations

import base64
import contextlib
import json
import posixpath
import shlex
from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable, cast

from ..kernel.paths import rebase
from .archive import ArchiveResult, HostLimits, ProgressCallback, hash_stream
from .container_write import exec_root, owner_of, stream_in
from .capture import Capture, SpaceBudget, _container_gone, _fetch
from .deep_paths import probe, refuse_to_clear
from .errors import ArchiveError, RestoreError
from .manifest import MANIFEST_VERSION, Manifest, Mismatch, diff_records
from .records import Record, short_path

if TYPE_CHECKING:  # the definitions are an adapter: the store only reads their fields
    from ..adapters.agents.definitions import AgentSpec

__all__ = ["capture_home", "build_home_manifest", "home_restore_names", "restore_home", "read_back_home"]

_CHUNK = 2 << 20  # what docker SDK reads per chunk (DEFAULT_DATA_CHUNK_SIZE)
_GO_MODE_DIR = 1 << 31
_GO_MODE_SYMLINK = 1 << 27


def excluded(excludes: list[str] | tuple[str, ...]) -> Callable[[str], bool]:
    """`path -> True` for an excluded path or anything below one."""
    ex = tuple(excludes)
    return lambda rel: any(rel == e or rel.startswith(e + "/") for e in ex)


def _path_stat(container: Any, path: str) -> dict[str, Any] | None:
    """Docker's stat of `path` in the container (not following a final symlink), or None."""
    api = container.client.api
    res = api.head(api._url("/containers/{0}/archive", container.id), params={"path": path})
    if res.status_code == 404:
        return None
    if res.status_code >= 400:
        raise RestoreError(f"cannot stat {path} in {container.name} (HTTP {res.status_code})")
    raw = res.headers.get("X-Docker-Container-Path-Stat")
    return json.loads(base64.b64decode(raw)) if raw else None


def _stat_or_none(container: Any, path: str) -> dict[str, Any] | None:
    """`_path_stat`, None also when the engine cannot stat the path (e.g. past its length limit)."""
    try:
        return _path_stat(container, path)
    except RestoreError:
        return None


def _archive_response(container: Any, path: str) -> Any:
    """The streamed response of `GET /containers/<id>/archive?path=...`, uncompressed: requests
    asks for `gzip, deflate` by default, and the engine would then gzip a stream that never
    leaves the machine (CPU on both sides; the SDK's `get_archive` asks for `identity` too)."""
    api = container.client.api
    return api._get(api._url("/containers/{0}/archive", container.id), params={"path": path}, stream=True,
                    headers={"Accept-Encoding": "identity"})


@contextlib.contextmanager
def _archive(container: Any, path: str) -> Iterator[Iterator[bytes]]:
    """The chunks of `get_archive(path)`, whose response is closed on leaving, however the
    reader stops. The engine holds the container's lock until the archive stream is closed:
    an abandoned stream would block the unpause (and stop) that must follow a cancelled read."""
    api = container.client.api
    res = _archive_response(container, path)
    try:
        api._raise_for_status(res)
        yield api._stream_raw_result(res, _CHUNK, False)
    finally:
        res.close()


def _check_home(container: Any, home: str) -> str | None:
    """Why `home` cannot be captured as a whole (absent, a symlink, not a directory), or None."""
    import docker.errors  # here, not at import: commands that never touch a container never load docker

    try:
        st = _path_stat(container, home)
    except (RestoreError, docker.errors.APIError, ValueError) as exc:
        return f"cannot read {home}: {exc}"
    if st is None:
        return f"{home} does not exist"
    mode = int(st.get("mode", 0))
    if st.get("linkTarget") or mode & _GO_MODE_SYMLINK:
        return f"{home} is a symlink"
    if not mode & _GO_MODE_DIR:
        return f"{home} is not a directory"
    return None


def capture_home(container: Any, agent: AgentSpec, dest: Path, *, on_progress: ProgressCallback | None = None,
                 budget: SpaceBudget | None = None, store_at: Path | None = None) -> Capture:
    """Fetch the whole home of `container` (`agent.home_dir`, already moved to the container's
    data root) into `dest` (an empty staged directory), with the same budget, gone-container
    and hostile-entry checks as `capture_sandbox`. Raises CaptureError like it."""
    budget = budget if budget is not None else SpaceBudget.from_env()
    gone = _container_gone(container)
    if gone is not None:
        raise gone
    budget.check(dest)
    home = agent.home_dir
    cap = Capture(state_dirs=[])
    why = _check_home(container, home)
    if why is None:
        res = _fetch(container, home.rstrip("/") + "/.", dest, prefix="", want_dir=True, on_progress=on_progress,
                     budget=budget, skip=excluded(agent.home_excludes),
                     limits=HostLimits.below(dest, *([store_at] if store_at is not None else [])))
        if res is None:
            why = f"{home} does not exist"
        elif isinstance(res, str):
            why = res
        else:
            cap.archive = res
            # Docker's archive walk passes over files that vanish under it, so a container removed
            # mid-stream can give a well-formed but partial tar: it must still exist afterwards.
            gone = _container_gone(container)
            if gone is not None:
                raise gone
    if why is not None:
        cap.failed_dirs[f"{home} ({why})"] = why
        return cap
    groups: dict[str, list[str]] = {}
    for r in cap.archive.rejected:  # grouped by the directory holding them: `.openclaw/workspace`
        groups.setdefault(posixpath.dirname(r.path) or ".", []).append(r.reason)
    for parent, reasons in sorted(groups.items()):
        n = len(reasons)
        cap.failed_dirs[short_path(parent, 60)] = f"{n} unsafe entr{'y' if n == 1 else 'ies'} refused: {reasons[0]}"
    cap.backed_up_dirs = sorted(d.path for d in cap.archive.dirs if "/" not in d.path)
    return cap


def build_home_manifest(
    capture: Capture,
    agent: AgentSpec,
    *,
    sandbox: str,
    timestamp: str,
    backup_path: Path,
    agent_version: str | None = None,
    policy_presets: list[str] | None = None,
    image: str | None = None,
) -> Manifest:
    return Manifest(
        version=MANIFEST_VERSION,
        sandbox_name=sandbox,
        timestamp=timestamp,
        agent_type=agent.name,
        agent_version=agent_version,
        expected_version=agent.expected_version,
        state_dirs=[],
        backed_up_dirs=list(capture.backed_up_dirs),
        state_files=[],
        dir=agent.home_dir,
        backup_path=str(backup_path),
        blueprint_digest=None,
        policy_presets=list(policy_presets or []),
        files=sorted(capture.archive.files, key=lambda f: f.path),
        dirs=sorted(capture.archive.dirs, key=lambda d: d.path),
        symlinks=sorted(capture.archive.symlinks, key=lambda s: s.path),
        sandbox_image=image,
        scope="home",
        excludes=list(agent.home_excludes),
    )


def home_restore_names(manifest: Manifest) -> list[str]:
    """The top-level entries of a home backup (what a restore writes into the home)."""
    return sorted({r.path.split("/", 1)[0] for r in cast("list[Record]", [*manifest.files, *manifest.dirs, *manifest.symlinks])})


def _clear_script(home: str, excludes: list[str]) -> str:
    """A POSIX sh script that empties `home` except the excluded paths. It never descends
    through a symlink: a kept path's ancestor that is not a real directory is removed."""
    tree: dict[str, Any] = {}  # name -> None (kept whole) or a dict (kept in part: descend)
    for e in sorted(excludes, key=lambda x: x.count("/")):
        node: dict[str, Any] | None
        node = tree  # narrowed to a dict here: an annotated assignment would not narrow it
        *parents, leaf = e.split("/")
        for part in parents:
            node = node.setdefault(part, {})
            if node is None:
                break  # an ancestor is kept whole already
        if node is not None:
            node[leaf] = None
    lines: list[str] = []

    def emit(d: str, node: dict[str, Any]) -> None:
        q = shlex.quote(d)
        lines.append(f"for e in {q}/* {q}/.[!.]* {q}/..?*; do")
        lines.append('  [ -e "$e" ] || [ -h "$e" ] || continue')
        if node:
            lines.append(f'  case "${{e##*/}}" in {"|".join(shlex.quote(k) for k in sorted(node))}) continue ;; esac')
        lines.append('  rm -rf -- "$e" || exit 1')
        lines.append("done")
        for name, child in sorted(node.items()):
            if child is None:
                continue
            p = shlex.quote(posixpath.join(d, name))
            lines.append(f"if [ -h {p} ] || {{ [ -e {p} ] && [ ! -d {p} ]; }}; then rm -f -- {p} || exit 1; "
                         f"elif [ -d {p} ]; then")
            emit(posixpath.join(d, name), child)
            lines.append("fi")

    emit(home, tree)
    return "\n".join(lines) + "\n"


def restore_home(
    container: Any,
    backup_dir: Path,
    manifest: Manifest,
    *,
    owner: tuple[int, int] | None = None,
    on_progress: ProgressCallback | None = None,
    data_root: str | None = None,
) -> tuple[list[str], int, int]:
    """Make the container's home (the manifest's, moved under `data_root`) equal to the backup
    (excluded paths left as they are); returns (top-level names written, files, bytes). Read
    back separately (`read_back_home`)."""
    home = rebase(manifest.dir, data_root)
    skip = excluded(manifest.excludes)
    for r in cast("list[Record]", [*manifest.files, *manifest.dirs, *manifest.symlinks]):
        if skip(r.path):
            raise RestoreError(f"backup {backup_dir} holds {r.path}, which its own manifest excludes; not restoring it")
    why = _check_home(container, home)
    if why is not None and not why.endswith("does not exist"):
        raise RestoreError(f"cannot restore into {container.name}: {why}")
    exec_root(container, ["mkdir", "-p", "--", home])
    if owner is None:
        owner = owner_of(container, home)
    # Never clear what the backup does not hold because no archive could (store/deep_paths.py).
    deep = probe(container, home)
    if deep.error is None:
        refuse_to_clear(deep, (r.path for r in cast("list[Record]", [*manifest.files, *manifest.dirs, *manifest.symlinks])), keep=skip,
                        archivable=lambda rel: _stat_or_none(container, posixpath.join(home, rel)) is not None,
                        where=f"{container.name}:{home}")
    exec_root(container, ["sh", "-c", _clear_script(home, list(manifest.excludes))], shown=2)
    names = home_restore_names(manifest)
    files, nbytes = stream_in(container, backup_dir, manifest, names, home, owner=owner, on_progress=on_progress)
    return names, files, nbytes


def read_back_home(container: Any, manifest: Manifest, *, base: str | None = None,
                   on_progress: ProgressCallback | None = None) -> Mismatch | None:
    """Re-read the whole home (hash only, excluded paths left out) and compare it with the
    manifest, file modes included: a file the backup does not have is a mismatch too. `base`
    is where the home is in this container (default the manifest's own)."""
    import docker.errors

    home = base or manifest.dir
    try:
        with _archive(container, home.rstrip("/") + "/.") as chunks:
            got: ArchiveResult = hash_stream(chunks, skip=excluded(manifest.excludes), on_progress=on_progress)
    except docker.errors.NotFound:
        return Mismatch(".", "missing")
    except (docker.errors.APIError, ArchiveError) as exc:
        raise RestoreError(f"reading back {home} from {container.name} failed: {exc}") from exc
    if got.rejected:
        r = got.rejected[0]
        return Mismatch(r.path, "rejected", None, r.reason)
    return diff_records(manifest.files, manifest.symlinks, got.files, got.symlinks, check_modes=True)
