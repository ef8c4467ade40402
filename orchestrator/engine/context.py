"""The run context: everything a step may see or use, and nothing it must not.

Steps get options, paths, the reporter, results of earlier states, the workflow's guard
wording and (lazily) the run's staging area. They never print directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..paths import Paths
from .output import Reporter

if TYPE_CHECKING:
    from ..store.staging import Staging
    from ..workflow.spec import WorkflowSpec
    from .events import EventLog


@attrs.define
class RunContext:
    run_id: str
    workflow: "WorkflowSpec"
    options: Mapping[str, Any]
    paths: Paths
    out: Reporter
    events: "EventLog"
    results: dict[str, Any] = attrs.field(factory=dict)
    # The current state's `with:` parameters.
    params: Mapping[str, Any] = attrs.field(factory=dict)
    # Free-form data steps pass to later steps (e.g. the enumerated sandboxes).
    data: dict[str, Any] = attrs.field(factory=dict)
    # The item a `foreach` state is running its sub-workflow for (None at top level).
    item: Any = None
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

    def fill(self, text: str) -> str:
        """`text` with `{option}` fields filled from the run's options (YAML wording such as
        "rebuilding sandbox '{name}'"); unknown or unset fields stay as written."""
        return text.format_map(_Fields({k: v for k, v in self.options.items() if v is not None}))

    def event(self, event: str, **fields: Any) -> None:
        self.events.write(event, **fields)


class _Fields(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
