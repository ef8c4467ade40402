"""One renderer (engine/output.py): steps and errors carry data; the terminal gets the house
indent and colour, a pipe the same text without colour, `--json` fields without either.

The text a person or a script greps for is the same as before the renderer existed: every
line about the run's work starts with two spaces (four for a detail), marks are ✓ ⚠ ✗."""

from __future__ import annotations

import json
import re

from orchestrator.engine.output import Note, Span, Style, render
from orchestrator.kernel.errors import StepError

from tests.support.engine import NEMOCLAW, Program
from tests.support.terminal import run_on_pty

ESC = re.compile(r"\x1b")


def test_notes_render_with_the_house_indent_and_colour_only_when_asked():
    plain, colour = Style(False), Style(True)
    assert render(Note("alpha: done", mark="ok"), plain) == "  ✓ alpha: done"
    assert render(Note("beta: skipped", mark="warn"), plain) == "  ⚠ beta: skipped"
    assert render(Note("gamma: failed", mark="fail"), plain) == "  ✗ gamma: failed"
    assert render(Note("Frozen.", tone="dim", indent=4), plain) == "    Frozen."
    assert render(Note(("a (", Span("running", "good"), ")")), plain) == "  a (running)"
    assert render(Note("one\ntwo"), plain) == "  one\n  two"
    assert render(Note("alpha: done", mark="ok"), colour) == f"  {colour.G}✓{colour.R} alpha: done"
    assert render(Note("Stale sandboxes:", tone="title"), colour) == f"  {colour.B}Stale sandboxes:{colour.R}"
    assert render(Note(("(", Span("running", "good"), ")"), indent=4), colour) == f"    ({colour.G}running{colour.R})"


def test_a_text_that_comes_indented_keeps_its_indent_and_one_without_gets_the_house_indent():
    assert render(Note.of("  Skipping 'a'"), Style(False)) == "  Skipping 'a'"
    assert render(Note.of("    openshell sandbox stop a"), Style(False)) == "    openshell sandbox stop a"
    assert render(Note.of("Skipping 'a'"), Style(False)) == "  Skipping 'a'"
    assert Note.of("    openshell sandbox stop a").plain == "openshell sandbox stop a"


def test_a_step_error_is_data_whatever_indent_it_was_written_with():
    old, new = StepError("  Sandbox 'a' is not registered."), StepError("Sandbox 'a' is not registered.")
    assert str(old) == str(new) == old.message == "Sandbox 'a' is not registered."
    two = StepError("  --strict: first.\n  --strict: second.")
    assert str(two) == "--strict: first.\n--strict: second."
    hinted = StepError("No target image for 'a'", sandbox="a", hint="pass --image.")
    assert str(hinted) == "No target image for 'a'; pass --image."
    assert hinted.as_data() == {"message": "No target image for 'a'", "kind": "error", "sandbox": "a", "hint": "pass --image."}


def test_a_pipe_gets_the_house_style_and_json_gets_fields_without_indent_or_escape_codes(tmp_path):
    program = Program(tmp_path)
    piped = program.run("t-say")
    assert piped.returncode == 1
    assert piped.stdout.splitlines() == [
        "  Looking at 'alpha'...",
        "  ✓ alpha: 2 dirs, 3 files",
        "    Frozen for 0.125 s while its state was read.",
        "    beta  v1 → v2  (running)",
    ]
    assert piped.stderr.splitlines() == [
        "  ⚠ beta: 1 socket was not backed up",
        "  Sandbox 'gamma' is not registered; register it, then rerun.",
    ]

    r = program.run("t-say", "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["reason"] == "StepError: Sandbox 'gamma' is not registered; register it, then rerun."
    assert doc["error"] == {"message": "Sandbox 'gamma' is not registered", "kind": "error", "sandbox": "gamma",
                            "hint": "register it, then rerun.", "type": "StepError", "state": "say"}
    assert doc["messages"] == [
        {"text": "Looking at 'alpha'...", "level": "info", "sandbox": "alpha"},
        {"text": "alpha: 2 dirs, 3 files", "level": "ok", "sandbox": "alpha"},
        {"text": "Frozen for 0.125 s while its state was read.", "level": "info", "sandbox": "alpha"},
        {"text": "beta  v1 → v2  (running)", "level": "info", "sandbox": "beta"},
        {"text": "beta: 1 socket was not backed up", "level": "warn", "sandbox": "beta"},
        {"text": "Sandbox 'gamma' is not registered; register it, then rerun.", "level": "error", "sandbox": "gamma"},
    ]
    texts = [doc["reason"], *_strings(doc)]
    assert not [t for t in texts if t != t.lstrip() or ESC.search(t)], texts
    # Lines meant for stdout go to stderr in --json mode, as a log shows them.
    assert "  ✓ alpha: 2 dirs, 3 files" in r.stderr.splitlines() and not ESC.search(r.stderr)

    plain = program.run("t-say", "--json", "--plain")
    doc = json.loads(plain.stdout)
    assert doc["reason"] == "StepError: Nothing more to say.\nSecond line of it."
    assert plain.stderr.splitlines()[-2:] == ["  Nothing more to say.", "  Second line of it."]


def test_a_terminal_gets_the_same_text_in_colour(tmp_path, monkeypatch):
    monkeypatch.delenv("COLORTERM", raising=False)  # 256 colours here and in the program
    program = Program(tmp_path)
    env = {**program.env, "TERM": "xterm-256color"}
    env.pop("NO_COLOR")
    code, screen = run_on_pty([NEMOCLAW, "t-say"], env, timeout=60)
    assert code == 1
    style = Style(True)
    assert f"  {style.G}✓{style.R} alpha: 2 dirs, 3 files" in screen
    assert f"    {style.D}Frozen for 0.125 s while its state was read.{style.R}" in screen
    assert f"    beta  v1 → v2  ({style.G}running{style.R})" in screen
    assert f"  {style.YW}⚠{style.R} beta: 1 socket was not backed up" in screen
    lines = [ESC.sub("", line) for line in re.sub(r"\x1b\[[0-9;]*m", "", screen).replace("\r", "").splitlines()]
    assert "  Sandbox 'gamma' is not registered; register it, then rerun." in lines


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
