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

RESUME_RETRY = "retry"
"""`resume: retry`: a resumed run runs the interrupted state's step again."""


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
    """A command-line option; a step that declares it (its signature's `options`) reads it as
    ctx.option(<name>)."""

    type: OptionType = "str"
    default: Any = None
    help: str = ""
    short: str | None = None
    choices: list[str] | None = None
    # Bounds of an int/float option, checked before the run starts (exit 2 outside them).
    min: float | None = None
    max: float | None = None
    # A str option whose flag may be given more than once (`--image a=x --image b=y`): the step
    # reads the values joined by single spaces, None when none was given.
    repeat: bool = False


@attrs.frozen
class ArgumentSpec:
    """A positional command-line argument (ctx.option(<name>) in a step that declares it)."""

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
    """Run another workflow once per item of a list fact an earlier state wrote.

    A child run starts with only the facts named in `facts` (none by default): it reads the
    world again through its own states. Its result goes into the fact named by `results`
    (default `item_results`). A child that ends in one of the terminals in `stop_on` stops the
    items after it (they are reported as not run): e.g. a rebuild whose rollback failed.
    """

    items: str
    workflow: str
    # The child workflow's option (or argument) that receives the item; default its subject
    # (its first argument: `WorkflowSpec.subject`).
    option: str | None = None
    facts: list[str] = attrs.Factory(list)
    results: str = "item_results"
    stop_on: list[str] = attrs.Factory(list)
    # Printed (stderr) for each item not run after a stop; {item}, {stopped_by}, {terminal}.
    stop_message: str = "Not running '{item}': the item '{stopped_by}' before it ended in '{terminal}'."


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
    # What a resumed run does when an earlier process was interrupted in this state:
    # `retry` (run the step again: it is idempotent) or the name of a state to go to instead
    # (e.g. a compensation). Required on states whose step changes the world.
    resume: str | None = None

    def routes(self) -> dict[str, str]:
        """outcome -> destination state, for every transition written in the file."""
        out = dict(self.branches)
        for key in ("next", "refuse", "error"):
            dest = getattr(self, key)
            if dest is not None:
                out[key] = dest
        return out

    def transitions(self) -> dict[str, str]:
        """Every transition out of this state: the written ones plus the implicit ones
        (`error` -> failed unless routed elsewhere; a foreach's `partial` -> failed). The
        one copy of that rule: the machine, the diagrams, validation and the drive loop use it."""
        if self.terminal:
            return {}
        out = self.routes()
        out.setdefault("error", "failed")
        if self.foreach is not None:
            out.setdefault("partial", "failed")
        return out

    def resume_target(self, name: str) -> str:
        """The state a resumed run continues in, for a run interrupted in state `name`."""
        return name if self.resume in (None, RESUME_RETRY) else self.resume


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
    # recovery, and reaching a step that changes the world (mutates or commits) ends it failed.
    read_only_when: str | None = None
    # How an interrupted run of this workflow is finished: `resume` it where it stopped, or,
    # with `rerun`, by the next run of the same workflow, which does the whole job again (other
    # commands and `runs resume` still resume it). backup-all: a new backup supersedes the old.
    interrupted: Literal["resume", "rerun"] = "resume"
    # Where it was loaded from (not a YAML key).
    source: Path | None = None

    @property
    def subject(self) -> str | None:
        """The argument naming what a run works on (the first one), by which the journal's
        readers say what an interrupted run was doing: `rebuild-sandbox 'alpha'`."""
        return self.arguments[0].name if self.arguments else None

    @property
    def all_states(self) -> dict[str, StateSpec]:
        """Declared states plus the implicit terminals (done, refused, failed)."""
        merged = {name: StateSpec(terminal=True, exit=code) for name, code in TERMINAL_DEFAULTS.items()}
        merged.update(self.states)
        return merged

    def transition_list(self) -> list[dict[str, str]]:
        """Every transition, as transitions' Machine takes them (trigger = outcome)."""
        return [{"trigger": outcome, "source": name, "dest": dest}
                for name, state in self.all_states.items() for outcome, dest in state.transitions().items()]

    def machine_states(self) -> list[str]:
        """Declared states in file order, then the implicit terminals that are used."""
        used = {t["dest"] for t in self.transition_list()}
        return list(self.states) + [t for t in self.all_states if t not in self.states and t in used]

    def exit_code(self, state: str) -> int:
        spec = self.all_states[state]
        if spec.exit is not None:
            return spec.exit
        return TERMINAL_DEFAULTS.get(state, 1)
