"""Workflow files: the typed spec, the YAML loader, validation, discovery and diagrams."""

from .discover import Found, builtin_dir, find_all, load_by_name, load_workflow, search_path
from .spec import ArgumentSpec, Backoff, ForEach, Guard, OptionSpec, Retry, StateSpec, WorkflowSpec

__all__ = [
    "ArgumentSpec", "Backoff", "ForEach", "Found", "Guard", "OptionSpec", "Retry", "StateSpec",
    "WorkflowSpec", "builtin_dir", "find_all", "load_by_name", "load_workflow", "search_path",
]
