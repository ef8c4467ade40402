"""WorkflowSpec -> transitions state machine.

Each outcome a state can end with is a trigger of the same name (`next`, `refuse`, `error`,
or a branch such as `empty`); the workflow language owns the list, implicit routes included
(`StateSpec.transitions`). Steps run *outside* transitions' callbacks: the engine calls the
step, then fires the trigger its outcome names, so an exception in a step can never leave the
machine half-way through a transition.
"""

from __future__ import annotations

from typing import Any

from transitions import Machine

from ..workflow.spec import WorkflowSpec


class RunModel:
    """The object transitions drives; it only records where the run is."""

    state: str


def build_machine(spec: WorkflowSpec, model: Any | None = None, initial: str | None = None) -> tuple[Machine, Any]:
    """The machine for `spec`, starting in `initial` (a resumed run starts where it stopped)."""
    model = model if model is not None else RunModel()
    machine = Machine(
        model=model,
        states=spec.machine_states(),
        transitions=spec.transition_list(),
        initial=initial or spec.initial,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )
    return machine, model
