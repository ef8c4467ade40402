"""The run context: everything a step may see or use, and nothing it must not.

Steps get options (`ctx.option(name)`: only those their signature declares, with its declared
default), paths, the reporter, the facts earlier states wrote (`ctx.get(FACT)` by typed handle,
or `ctx.fact(name)`: only those their signature declares), the workflow's guard wording and
(lazily) the run's staging area. They never print directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

import attrs

from ..kernel.paths import Paths
from ..kernel.errors import StepError
from ..workflow.signature import StepSignature
from .facts import Fact, check_value
from .output import Reporter

_MISSING: Any = object()
T = TypeVar("T")
D = TypeVar("D")

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
    step_signature: StepSignature | None = None
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
    # The option that made it read-only (a foreach child's is its parent's).
    read_only_by: str | None = None
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

    @overload
    def get(self, fact: Fact[T]) -> T: ...
    @overload
    def get(self, fact: Fact[T], default: D) -> T | D: ...
    def get(self, fact: Fact[Any], default: Any = _MISSING) -> Any:
        """The value of `fact` (a handle from engine/facts.py `declare`), typed: `fact`."""
        return self.fact(fact.name, default)

    def set(self, fact: Fact[T], value: T) -> None:
        """Write `fact` (a handle): `put`, typed."""
        self.put(fact.name, value)

    def option(self, name: str) -> Any:
        """The value of a workflow option (or argument) the running step declares reading
        (its signature's `options`): the run's value, else the step's declared default when
        the workflow does not declare it (or leaves it unset). Reading an undeclared one is a bug."""
        sig = self.step_signature
        decl = sig.options.get(name) if sig is not None else None
        if sig is not None and decl is None:
            raise StepError(f"  internal error: step '{sig.name}' reads option '{name}' without declaring it")
        value = self.options.get(name)
        if value is None and decl is not None:
            return decl.default
        return value

    def param(self, name: str) -> Any:
        """The state's `with:` value of a parameter the running step declares, else the default
        its signature declares (None without one). Reading an undeclared one is a bug."""
        sig = self.step_signature
        if sig is not None and name not in sig.params:
            raise StepError(f"  internal error: step '{sig.name}' reads parameter '{name}' without declaring it")
        if name in self.params:
            return self.params[name]
        return sig.param_defaults.get(name) if sig is not None else None

    def fact(self, name: str | Fact[Any], default: Any = _MISSING) -> Any:
        """A fact an earlier state wrote. Reading a fact the step does not declare is a bug;
        a declared optional (`may_read`) fact that was not written gives `default`."""
        if isinstance(name, Fact):
            name = name.name
        sig = self.step_signature
        if sig is not None and name not in sig.reads and name not in sig.may_read and name not in sig.writes:
            raise StepError(f"  internal error: step '{sig.name}' reads fact '{name}' without declaring it")
        if name in self.facts:
            return self.facts[name]
        if default is not _MISSING:
            return default
        raise StepError(f"  internal error: fact '{name}' was not written by an earlier state")

    def has_fact(self, name: str | Fact[Any]) -> bool:
        return (name.name if isinstance(name, Fact) else name) in self.facts

    def put(self, name: str | Fact[Any], value: Any) -> None:
        """Write a fact the step declares; the journal records it when the state ends."""
        if isinstance(name, Fact):
            name = name.name
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
