"""Mermaid state diagrams drawn by transitions' mermaid engine (no graphviz needed)."""

from __future__ import annotations

from transitions.extensions import GraphMachine

from ..engine.machine import state_names, transitions_of
from .spec import WorkflowSpec


def mermaid(spec: WorkflowSpec) -> str:
    class _Model:
        pass

    model = _Model()
    GraphMachine(
        model=model,
        states=state_names(spec),
        transitions=transitions_of(spec),
        initial=spec.initial,
        auto_transitions=False,
        graph_engine="mermaid",
        title=spec.name,
        show_state_attributes=False,
    )
    text = str(model.get_graph().draw(None)).rstrip() + "\n"  # type: ignore[attr-defined]
    # transitions writes the title bare inside the front matter; mermaid wants `title: ...`.
    head = f"---\n{spec.name}\n---\n"
    if text.startswith(head):
        text = f"---\ntitle: {spec.name}\n---\n" + text[len(head):]
    return text


def diagram_markdown(spec: WorkflowSpec) -> str:
    """The checked-in diagrams/<name>.md: a title, the summary, the mermaid block."""
    source = f"workflows/{spec.name}.yaml"
    return (
        f"# `{spec.name}`\n\n{spec.summary}\n\n"
        f"Generated from `{source}` by `nemoclaw workflows graph {spec.name} --markdown`; "
        "a test fails when this file is stale.\n\n"
        f"```mermaid\n{mermaid(spec)}```\n"
    )
