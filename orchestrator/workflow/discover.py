"""Finding workflow files: built-in, then ~/.nemoclaw/workflows/, then $NEMOCLAW_WORKFLOWS_PATH.

The first file with a given name wins, like $PATH, so a user file can never silently replace a
built-in workflow; `nemoclaw workflows list` shows what is shadowed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..kernel.errors import DefinitionError
from ..kernel.paths import Paths

if TYPE_CHECKING:
    from .signature import StepSignature
    from .spec import WorkflowSpec


def builtin_dir() -> Path:
    """workflows/ of a checkout (editable install) or the copy packed into the wheel."""
    here = Path(__file__).resolve().parents[1]  # the orchestrator package (a directory, never a zip)
    packed = here / "_workflows"
    if packed.is_dir():
        return packed
    return here.parent / "workflows"


def search_path(paths: Paths | None = None) -> list[Path]:
    paths = paths or Paths.from_env()
    dirs = [builtin_dir(), paths.user_workflows_dir]
    dirs += [Path(p) for p in os.environ.get("NEMOCLAW_WORKFLOWS_PATH", "").split(os.pathsep) if p]
    return dirs


class Found(NamedTuple):
    name: str
    path: Path
    builtin: bool
    shadowed: tuple[Path, ...] = ()


def find_all(paths: Paths | None = None) -> dict[str, Found]:
    found: dict[str, Found] = {}
    for i, d in enumerate(search_path(paths)):
        for f in _yaml_files(d):
            name = f.stem
            if name in found:
                prev = found[name]
                found[name] = prev._replace(shadowed=prev.shadowed + (f,))
            else:
                found[name] = Found(name, f, builtin=(i == 0))
    return found


def _yaml_files(d: Path) -> Iterator[Path]:
    if not d.is_dir():
        return iter(())
    return iter(sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))


def load_checked(path: Path, known: set[str], steps: Mapping[str, StepSignature], facts: set[str]) -> WorkflowSpec:
    """Load and validate one file against the given step signatures and declared facts (the
    engine's registry supplies them: engine/loader.py); raises DefinitionError with every problem."""
    from .load import load_file
    from .validate import validate

    spec, loc = load_file(path)
    builtin = path.resolve().parent == builtin_dir().resolve()
    validate(spec, loc, steps, workflow_exists=lambda n: n in known, facts=facts, builtin=builtin,
             child=lambda n: _unchecked(n, path.parent))
    return spec


def _unchecked(name: str, beside: Path) -> WorkflowSpec | None:
    """Workflow `name` as written (it is checked on its own), for what a foreach gives it: the
    one on the path, else one beside the file being checked; None when it does not load."""
    from .load import load_file

    found = find_all().get(name)
    path = found.path if found is not None else beside / f"{name}.yaml"
    try:
        return load_file(path)[0]
    except DefinitionError:
        return None


def find_one(name: str, paths: Paths | None = None) -> tuple[Found, set[str]]:
    """The file of workflow `name` and the names of all workflows; DefinitionError if unknown."""
    found = find_all(paths)
    if name not in found:
        raise DefinitionError([f"unknown workflow '{name}'; known: {', '.join(sorted(found)) or 'none'}"])
    return found[name], set(found)


def subject_of(workflow: str | None, source: str | None) -> str | None:
    """The subject argument (`WorkflowSpec.subject`) of the workflow a journal names: from the
    file it ran (`source`), else the one of that name on the path; None when neither loads."""
    from .load import load_file

    candidates = [Path(source)] if source else []
    found = find_all().get(workflow or "") if workflow else None
    if found is not None:
        candidates.append(found.path)
    for path in candidates:
        try:
            return load_file(path)[0].subject
        except DefinitionError:
            continue
    return None
