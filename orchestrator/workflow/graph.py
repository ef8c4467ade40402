"""Mermaid state diagrams drawn by transitions' mermaid engine (no graphviz needed).

Besides the outcomes, each state that declares `resume:` gets an edge labelled `resume` to
where a resumed run continues after a crash there (itself for `resume: retry`)."""

from __future__ import annotations

from transitions.extensions import GraphMachine

from .spec import RESUME_RETRY, WorkflowSpec


def mermaid(spec: WorkflowSpec) -> str:
    class _Model:
        pass

    model = _Model()
    GraphMachine(
        model=model,
        states=spec.machine_states(),
        transitions=spec.transition_list() + _resume_edges(spec),
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


def _resume_edges(spec: WorkflowSpec) -> list[dict[str, str]]:
    return [{"trigger": "resume", "source": name, "dest": name if s.resume == RESUME_RETRY else s.resume}
            for name, s in spec.states.items() if s.resume is not None]


def diagram_markdown(spec: WorkflowSpec) -> str:
    """The checked-in diagrams/<name>.md: a title, the summary, the mermaid block."""
    source = f"workflows/{spec.name}.yaml"
    return (
        f"# `{spec.name}`\n\n{spec.summary}\n\n"
        f"Generated from `{source}` by `nemoclaw workflows graph {spec.name} --markdown`; "
        "a test fails when this file is stale.\n\n"
        f"```mermaid\n{mermaid(spec)}```\n"
    )
