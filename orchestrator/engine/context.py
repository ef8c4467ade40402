"""The run context: everything a step may see or use, and nothing it must not.

Steps get options, paths, the reporter, the facts earlier states wrote (only those their
signature declares), the workflow's guard wording and (lazily) the run's staging area. They
never print directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..kernel.paths import Paths
from ..kernel.errors import StepError
from .facts import check_value
from .output import Reporter

_MISSING: Any = object()

if TYPE_CHECKING:
    from ..store.staging import Staging
    from ..workflow.spec import WorkflowSpec
    from .journal import Journal


@attrs.define
class RunContext:
    run_id: str
    workflow: "WorkflowSpec"
    options: Mapping[str, Any]
    paths: Paths
    out: Reporter
    journal: "Journal"
    # Facts written so far (name -> value); see facts.py.
    facts: dict[str, Any] = attrs.field(factory=dict)
    # The current state's `with:` parameters.
    params: Mapping[str, Any] = attrs.field(factory=dict)
    # The step running now (its signature bounds what it may read and write) and what it wrote.
    step_signature: Any = None
    written: dict[str, Any] = attrs.field(factory=dict)
    # Set when this run continues an interrupted one (the state it was interrupted in).
    resumed_from: str | None = None
    # A foreach state being resumed: what the journal says of its items (engine/foreach.py).
    prior_items: dict[str, Any] | None = None
    # Interrupted runs a read-only run found (reported; they make it end non-zero).
    interrupted: list[Any] = attrs.field(factory=list)
    # The last step failure that was routed somewhere (a state's `error:`), for recovery steps.
    last_error: BaseException | None = None
    last_error_state: str | None = None
    # A step may set this to override the exit code of the terminal state the run ends in.
    exit_code: int | None = None
    debug: bool = False
    # Set by the workflow's `read_only_when` option: no lock, no sweep, no recovery, no commit.
    read_only: bool = False
    _staging: "Staging | None" = None

    @property
    def staging(self) -> "Staging":
        """The run's staging area, created on first use and discarded unless committed."""
        if self._staging is None:
            from ..store.staging import Staging

            self._staging = Staging.create(self.paths.staging_root, self.run_id)
        return self._staging

    @property
    def has_staging(self) -> bool:
        return self._staging is not None

    def fact(self, name: str, default: Any = _MISSING) -> Any:
        """A fact an earlier state wrote. Reading a fact the step does not declare is a bug;
        a declared optional (`may_read`) fact that was not written gives `default`."""
        sig = self.step_signature
        if sig is not None and name not in sig.reads and name not in sig.may_read and name not in sig.writes:
            raise StepError(f"  internal error: step '{sig.name}' reads fact '{name}' without declaring it")
        if name in self.facts:
            return self.facts[name]
        if default is not _MISSING:
            return default
        raise StepError(f"  internal error: fact '{name}' was not written by an earlier state")

    def has_fact(self, name: str) -> bool:
        return name in self.facts

    def put(self, name: str, value: Any) -> None:
        """Write a fact the step declares; the journal records it when the state ends."""
        sig = self.step_signature
        if sig is not None and name not in sig.writes:
            raise StepError(f"  internal error: step '{sig.name}' writes fact '{name}' without declaring it")
        check_value(name, value)
        self.facts[name] = value
        self.written[name] = value

    def fill(self, text: str) -> str:
        """`text` with `{option}` fields filled from the run's options (YAML wording such as
        "rebuilding sandbox '{name}'"); unknown or unset fields stay as written."""
        return text.format_map(_Fields({k: v for k, v in self.options.items() if v is not None}))

    def event(self, event: str, **fields: Any) -> None:
        """Record an event in the run's journal (under this run's id: a foreach child's own)."""
        self.journal.write(event, run=self.run_id, **fields)


class _Fields(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
