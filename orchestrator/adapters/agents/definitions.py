"""Agent definitions (what to back up from a sandbox of each agent type), as data.

Each agent is a YAML file in `orchestrator/adapters/agents/` inside the package, found through
importlib.resources so an installed wheel carries them. Adding an agent means adding a file.
Loading is strict: unknown keys, wrong types or unsafe paths are a `ManifestError` naming the
file (and line, for YAML syntax errors).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import attrs
import cattrs
import yaml
from cattrs.gen import make_dict_structure_fn

from ...kernel.convert import strict_converter
from ...kernel.errors import ManifestError

__all__ = ["AgentSpec", "StateFileSpec", "agent_names", "load_agent", "load_agent_file"]

STRATEGIES = ("copy", "sqlite_backup")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@attrs.frozen
class StateFileSpec:
    path: str
    strategy: str


@attrs.frozen
class AgentSpec:
    name: str
    dir: str
    state_dirs: tuple[str, ...]
    state_files: tuple[StateFileSpec, ...] = ()
    expected_version: str | None = None
    version_command: str | None = None
    # The image label that names the agent version, read for a sandbox that is not running.
    version_label: str | None = None
    # The whole-home scope: the sandbox home and the paths below it a backup leaves out
    # (runtime and per-install files that must not be restored). Default: the parent of `dir`.
    home: str | None = None
    home_excludes: tuple[str, ...] = ()

    @property
    def home_dir(self) -> str:
        return self.home or (str(PurePosixPath(self.dir).parent))


def _make_converter() -> cattrs.Converter:
    conv = strict_converter()
    for cls in (StateFileSpec, AgentSpec):
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True))
    return conv


_converter = _make_converter()


def _agents_dir() -> Any:
    return resources.files(__package__)


def agent_names() -> list[str]:
    """Names of the agents shipped with the package."""
    return sorted(p.name[: -len(".yaml")] for p in _agents_dir().iterdir() if p.name.endswith(".yaml"))


def load_agent(name: str) -> AgentSpec:
    """The packaged definition of agent `name` (e.g. `openclaw`)."""
    if not _NAME_RE.match(name) or name not in agent_names():
        raise ManifestError(f"agent {name!r}", f"unknown agent; known agents: {', '.join(agent_names())}")
    res = _agents_dir().joinpath(f"{name}.yaml")
    return _parse(res.read_text(encoding="utf-8"), f"orchestrator/adapters/agents/{name}.yaml", expect_name=name)


def load_agent_file(path: Path) -> AgentSpec:
    """An agent definition from any YAML file (its `name` must match the file name)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(path, f"cannot read agent definition ({exc.strerror})") from None
    return _parse(text, str(path), expect_name=path.stem)


def _parse(text: str, source: str, *, expect_name: str) -> AgentSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ManifestError(where, f"invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(source, f"invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError(source, "an agent definition must be a mapping")
    try:
        spec = _converter.structure(data, AgentSpec)
    except Exception as exc:
        problems = cattrs.transform_error(exc, path="agent") if isinstance(exc, cattrs.BaseValidationError) else [str(exc)]
        raise ManifestError(source, "invalid agent definition: " + "; ".join(problems)) from None
    _check(spec, source, expect_name)
    return spec


def _safe_rel(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts and "\x00" not in path and str(p) == path


def _check(spec: AgentSpec, source: str, expect_name: str) -> None:
    if spec.name != expect_name:
        raise ManifestError(source, f"name {spec.name!r} does not match the file name {expect_name!r}")
    if not spec.dir.startswith("/") or ".." in PurePosixPath(spec.dir).parts:
        raise ManifestError(source, f"dir {spec.dir!r} must be an absolute path without '..'")
    for d in spec.state_dirs:
        if not _safe_rel(d) or "/" in d:
            raise ManifestError(source, f"state_dirs entry {d!r} must be a plain directory name")
    for f in spec.state_files:
        if not _safe_rel(f.path):
            raise ManifestError(source, f"state_files path {f.path!r} must be relative, without '..'")
        if f.strategy not in STRATEGIES:
            raise ManifestError(source, f"state_files strategy {f.strategy!r} must be one of {', '.join(STRATEGIES)}")
    if spec.home is not None and (not spec.home.startswith("/") or ".." in PurePosixPath(spec.home).parts
                                  or str(PurePosixPath(spec.home)) != spec.home or spec.home == "/"):
        raise ManifestError(source, f"home {spec.home!r} must be an absolute path without '..' (and not /)")
    for e in spec.home_excludes:
        if not _safe_rel(e) or any(ch in e for ch in "*?[]\\'\"\n"):
            raise ManifestError(source, f"home_excludes entry {e!r} must be a plain relative path, without '..' or wildcards")
    if len(set(spec.state_dirs)) != len(spec.state_dirs):
        raise ManifestError(source, "state_dirs has duplicates")
