"""WorkflowSpec -> transitions state machine.

Each outcome a state can end with is a trigger of the same name (`next`, `refuse`, `error`,
or a branch such as `empty`). Every non-terminal state also has an implicit `error` trigger to
`failed` unless it routes errors elsewhere. Steps run *outside* transitions' callbacks: the
engine calls the step, then fires the trigger its outcome names, so an exception in a step can
never leave the machine half-way through a transition.
"""

from __future__ import annotations

from typing import Any

from transitions import Machine

from ..workflow.spec import WorkflowSpec


def transitions_of(spec: WorkflowSpec) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for name, state in spec.all_states.items():
        if state.terminal:
            continue
        routes = state.routes()
        routes.setdefault("error", "failed")
        if state.foreach is not None:
            routes.setdefault("partial", "failed")
        for outcome, dest in routes.items():
            out.append({"trigger": outcome, "source": name, "dest": dest})
    return out


def state_names(spec: WorkflowSpec) -> list[str]:
    """Declared states in file order, then the implicit terminals that are used."""
    used = {t["dest"] for t in transitions_of(spec)}
    names = list(spec.states)
    names += [t for t in spec.all_states if t not in spec.states and t in used]
    return names


class RunModel:
    """The object transitions drives; it only records where the run is."""

    state: str


def build_machine(spec: WorkflowSpec, model: Any | None = None) -> tuple[Machine, Any]:
    model = model if model is not None else RunModel()
    machine = Machine(
        model=model,
        states=state_names(spec),
        transitions=transitions_of(spec),
        initial=spec.initial,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )
    return machine, model
