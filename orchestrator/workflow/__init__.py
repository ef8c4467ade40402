"""The workflow language: the typed spec, the YAML loader, step signatures, validation,
discovery and diagrams. It knows steps only by their signatures (signature.py); the engine's
registry supplies them when a file is loaded (discover.py asks for them lazily)."""

from .spec import ArgumentSpec, Backoff, ForEach, Guard, OptionSpec, Retry, StateSpec, WorkflowSpec

__all__ = ["ArgumentSpec", "Backoff", "ForEach", "Guard", "OptionSpec", "Retry", "StateSpec", "WorkflowSpec"]
