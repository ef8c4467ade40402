"""The typed shape of a workflow file. docs/workflows.md documents every field.

Only structure lives here; rules that need more than one field (reachability, known steps,
routable outcomes) are in validate.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import attrs

TERMINAL_DEFAULTS: dict[str, int] = {"done": 0, "refused": 1, "failed": 1}
"""Terminal states every workflow has, with their exit codes."""

OptionType = Literal["bool", "int", "float", "str", "choice"]


@attrs.frozen
class Backoff:
    """Exponential wait between attempts: initial, initial*multiplier, ... capped at max."""

    initial: float = 0.5
    max: float = 10.0
    multiplier: float = 2.0


@attrs.frozen
class Retry:
    attempts: int = 3
    backoff: Backoff = Backoff()
    # Error kinds worth another attempt (StepError.kind; `timeout`, `docker`, `os` are
    # derived from the exception type). Anything else fails at once.
    errors: list[str] = attrs.Factory(lambda: ["transient"])


@attrs.frozen
class OptionSpec:
    """A command-line option; its value is visible to steps as ctx.options[<name>]."""

    type: OptionType = "str"
    default: Any = None
    help: str = ""
    short: str | None = None
    choices: list[str] | None = None


@attrs.frozen
class ArgumentSpec:
    """A positional command-line argument (ctx.options[<name>])."""

    name: str
    help: str = ""
    required: bool = True


@attrs.frozen
class Guard:
    """Marks a guarded workflow: it starts with a preflight that may refuse. The wording
    goes into the standard diagnosis: "... schema preflight failed before <action>." and
    "Rerun `<command>` after ..."."""

    action: str
    command: str


@attrs.frozen
class ForEach:
    """Run another workflow once per item of a list a previous step left in ctx.data."""

    items: str
    workflow: str
    # The child workflow's option (or argument) that receives the item.
    option: str = "name"


@attrs.frozen
class StateSpec:
    do: str | None = None
    # Parameters for this use of the step (ctx.params), like GitHub Actions' `with:`.
    # (YAML key `with`; renamed by the loader since `with` is a Python keyword.)
    with_: dict[str, Any] = attrs.Factory(dict)
    summary: str = ""
    next: str | None = None
    refuse: str | None = None
    error: str | None = None
    branches: dict[str, str] = attrs.Factory(dict)
    retry: Retry | None = None
    foreach: ForEach | None = None
    terminal: bool = False
    exit: int | None = None

    def routes(self) -> dict[str, str]:
        """outcome -> destination state, for every transition out of this state."""
        out = dict(self.branches)
        for key in ("next", "refuse", "error"):
            dest = getattr(self, key)
            if dest is not None:
                out[key] = dest
        return out


@attrs.frozen
class WorkflowSpec:
    name: str
    summary: str
    initial: str
    states: dict[str, StateSpec]
    description: str = ""
    usage: str | None = None
    options: dict[str, OptionSpec] = attrs.Factory(dict)
    arguments: list[ArgumentSpec] = attrs.Factory(list)
    guard: Guard | None = None
    lock: bool = True
    # A bool option that makes the run read-only (e.g. `check`): no lock, no sweep, no gateway
    # recovery, and reaching a commit step is an error.
    read_only_when: str | None = None
    # Where it was loaded from (not a YAML key).
    source: Path | None = None

    @property
    def all_states(self) -> dict[str, StateSpec]:
        """Declared states plus the implicit terminals (done, refused, failed)."""
        merged = {name: StateSpec(terminal=True, exit=code) for name, code in TERMINAL_DEFAULTS.items()}
        merged.update(self.states)
        return merged

    def exit_code(self, state: str) -> int:
        spec = self.all_states[state]
        if spec.exit is not None:
            return spec.exit
        return TERMINAL_DEFAULTS.get(state, 1)
