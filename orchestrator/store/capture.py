"""Capture one sandbox's state into a staged directory, and describe it with a manifest.

The backup side of the Docker transport: each declared state directory and state file of the
agent is fetched with `get_archive` and streamed through `archive.extract_stream` (hostile
entries refused). A path missing in the sandbox is simply not backed up (NemoClaw's existence
probe does the same); a path that is not what the agent declares (a state dir that is a file
or symlink), or an unreadable stream, fails that path. Rejected entries make the capture not
`ok`: a caller must then discard the staged directory, never commit it.

`sqlite_backup` state files are copied as they are: a consistent SQLite snapshot needs a
helper inside the sandbox (NemoClaw runs python's sqlite3 backup there); the copy is exact if
the agent is idle.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

import attrs
import docker.errors

from .agents import AgentSpec
from .archive import ArchiveResult, ProgressCallback, extract_stream
from .errors import ArchiveError
from .manifest import MANIFEST_VERSION, Manifest, StateFile

__all__ = ["Capture", "capture_sandbox", "build_manifest"]

_GO_MODE_DIR = 1 << 31  # Go os.FileMode bits in Docker's X-Docker-Container-Path-Stat header
_GO_MODE_TYPE = (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)


@attrs.define
class Capture:
    state_dirs: list[str]
    backed_up_dirs: list[str] = attrs.field(factory=list)
    failed_dirs: dict[str, str] = attrs.field(factory=dict)  # name -> why
    backed_up_files: list[StateFile] = attrs.field(factory=list)
    failed_files: dict[str, str] = attrs.field(factory=dict)
    archive: ArchiveResult = attrs.field(factory=ArchiveResult)

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing was refused: the staged directory may be committed."""
        return not self.failed_dirs and not self.failed_files and not self.archive.rejected


def _fetch(container: Any, path: str, dest: Path, *, prefix: str, want_dir: bool,
           on_progress: ProgressCallback | None) -> ArchiveResult | str | None:
    """ArchiveResult on success, None if the path is absent, or a reason string on failure."""
    try:
        chunks, stat = container.get_archive(path)
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError as exc:
        return f"cannot read {path}: {exc.explanation or exc}"
    mode = int((stat or {}).get("mode", 0))
    is_dir = bool(mode & _GO_MODE_DIR)
    is_regular = not (mode & _GO_MODE_TYPE)
    if want_dir and not is_dir:
        return f"{path} is not a directory"
    if not want_dir and not is_regular:
        return f"{path} is not a regular file"
    try:
        return extract_stream(chunks, dest, prefix=prefix, only_under=posixpath.basename(path), on_progress=on_progress)
    except ArchiveError as exc:
        return str(exc)


def capture_sandbox(
    container: Any,
    agent: AgentSpec,
    dest: Path,
    *,
    extra_dirs: list[str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> Capture:
    """Fetch the agent's state from `container` (a docker SDK Container) into `dest` (an empty
    staged directory). `extra_dirs` adds discovered directories (NemoClaw's `workspace-*`)."""
    state_dirs = list(agent.state_dirs) + [d for d in (extra_dirs or []) if d not in agent.state_dirs]
    cap = Capture(state_dirs=state_dirs)
    for name in state_dirs:
        res = _fetch(container, posixpath.join(agent.dir, name), dest, prefix="", want_dir=True, on_progress=on_progress)
        if isinstance(res, str):
            cap.failed_dirs[name] = res
        elif res is not None:
            cap.archive.merge(res)
            if res.rejected:
                cap.failed_dirs[name] = f"{len(res.rejected)} unsafe entr{'y' if len(res.rejected) == 1 else 'ies'} refused"
            else:
                cap.backed_up_dirs.append(name)
    for sf in agent.state_files:
        parent = posixpath.dirname(sf.path)
        res = _fetch(container, posixpath.join(agent.dir, sf.path), dest, prefix=parent, want_dir=False,
                     on_progress=on_progress)
        if isinstance(res, str):
            cap.failed_files[sf.path] = res
        elif res is not None:
            cap.archive.merge(res)
            if res.rejected:
                cap.failed_files[sf.path] = res.rejected[0].reason
            else:
                cap.backed_up_files.append(StateFile(path=sf.path, strategy=sf.strategy))
    return cap


def build_manifest(
    capture: Capture,
    agent: AgentSpec,
    *,
    sandbox: str,
    timestamp: str,
    backup_path: Path,
    agent_version: str | None = None,
    blueprint_digest: str | None = None,
    policy_presets: list[str] | None = None,
    name: str | None = None,
    image: str | None = None,
) -> Manifest:
    """The manifest for a capture; `backup_path` is the final (committed) location."""
    return Manifest(
        version=MANIFEST_VERSION,
        sandbox_name=sandbox,
        timestamp=timestamp,
        agent_type=agent.name,
        agent_version=agent_version,
        expected_version=agent.expected_version,
        state_dirs=list(capture.state_dirs),
        backed_up_dirs=list(capture.backed_up_dirs),
        state_files=list(capture.backed_up_files),
        dir=agent.dir,
        backup_path=str(backup_path),
        blueprint_digest=blueprint_digest,
        policy_presets=list(policy_presets or []),
        files=sorted(capture.archive.files, key=lambda f: f.path),
        dirs=sorted(capture.archive.dirs, key=lambda d: d.path),
        symlinks=sorted(capture.archive.symlinks, key=lambda s: s.path),
        name=name,
        sandbox_image=image,
    )
