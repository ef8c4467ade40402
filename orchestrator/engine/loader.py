"""Loading a workflow for a run: find it (workflow/discover.py) and check it against the steps
and facts the registry holds (which loads the step libraries the first time)."""

from __future__ import annotations

from pathlib import Path

from ..kernel.paths import Paths
from ..workflow.discover import find_all, find_one, load_checked
from ..workflow.spec import WorkflowSpec
from .facts import declared
from .registry import signatures


def load_workflow(path: Path, known: set[str] | None = None) -> WorkflowSpec:
    """Load and validate one file; raises DefinitionError with every problem."""
    names = known if known is not None else set(find_all())
    sigs = signatures()  # imports the step library, which declares the built-in facts
    return load_checked(path, names, sigs, set(declared()))


def load_by_name(name: str, paths: Paths | None = None) -> WorkflowSpec:
    found, names = find_one(name, paths)
    return load_workflow(found.path, names)
