"""Every journal format we ever wrote is still read and resumed: one golden journal per format
(tests/engine/golden/, kept byte for byte), each `nemoclaw t-marks` SIGKILLed right after
entering its second item's `mark` state, is resumed by the next mutating run, which finishes
the items the killed run had not done. A format without a golden journal fails here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orchestrator.engine.journal import JOURNAL_FORMAT, read_journal, replay

GOLDEN_DIR = Path(__file__).parent / "golden"


def _format_of(path: Path) -> int:
    first = json.loads(path.read_text().splitlines()[0])
    assert first["event"] == "run_started", path
    return int(first.get("format", 1))


GOLDEN = {_format_of(p): p for p in sorted(GOLDEN_DIR.glob("*.jsonl"))}


def test_there_is_a_golden_journal_of_every_format_we_write():
    assert sorted(GOLDEN) == list(range(1, JOURNAL_FORMAT + 1))


@pytest.mark.parametrize("fmt", sorted(GOLDEN))
def test_a_golden_journal_resumes_and_finishes(engine, fmt):
    runs = engine.home / ".nemoclaw" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / GOLDEN[fmt].name
    shutil.copyfile(GOLDEN[fmt], path)
    (engine.home / "marks").write_text("one\n")  # what the killed run had done

    events, damaged = read_journal(path)
    assert not damaged, damaged
    assert replay(events, path.stem).finished is None  # interrupted, not ended

    again = engine.run("t-commit")
    assert again.returncode == 0, again.stderr
    assert f"  Resuming interrupted run {path.stem} (t-mark-item 'two', stopped in state 'mark' at " in again.stdout
    assert (engine.home / "marks").read_text().split() == ["one", "two", "three"]
    events, damaged = read_journal(path)
    assert not damaged and replay(events, path.stem).finished["exit_code"] == 0
