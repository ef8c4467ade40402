"""The run journal: what a run writes, how it is read back, and what a damaged or unwritable one does."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from orchestrator.engine.journal import Journal, read_journal, replay, summarize
from orchestrator.engine.output import Reporter
from orchestrator.engine.run import run_workflow
from orchestrator.kernel.paths import Paths
from orchestrator.engine.loader import load_workflow

import tests.support.engine  # noqa: F401 - registers the engine's test steps
from tests.support.cli import invoke


def spec_of(tmp_path: Path, name: str, body: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(body))
    return load_workflow(path, {name})


def reporter() -> Reporter:
    return Reporter(stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("ENGINE_TEST_DIR", str(h))
    return h


def test_an_undeclared_outcome_fails_the_run_cleanly_and_the_journal_ends(tmp_path, home):
    spec = spec_of(tmp_path, "t-partial", """\
        name: t-partial
        summary: A step ends with an outcome its state does not route.
        initial: one
        states:
          one: {do: t_undeclared_partial, next: done}
        """)
    out = reporter()
    result = run_workflow(spec, {}, paths=Paths(home), out=out)
    assert (result.terminal, result.exit_code) == ("failed", 1)
    assert "step 't_undeclared_partial' ended with 'partial', which state 'one' does not route (it routes: error, next)" in out.stderr.getvalue()
    events, damaged = read_journal(home / ".nemoclaw" / "runs" / f"{result.run_id}.jsonl")
    assert not damaged and events[-1]["event"] == "run_finished" and events[-1]["terminal"] == "failed"


def test_replay_rebuilds_facts_and_position_from_the_journal_alone(tmp_path, home):
    spec = spec_of(tmp_path, "t-facts", """\
        name: t-facts
        summary: Writes a fact, then works on it.
        initial: items
        states:
          items: {do: t_items, next: work}
          work: {do: t_ok, next: done}
        """)
    result = run_workflow(spec, {}, paths=Paths(home), out=reporter())
    assert result.exit_code == 0
    events, _ = read_journal(home / ".nemoclaw" / "runs" / f"{result.run_id}.jsonl")
    r = replay(events, result.run_id)
    assert r.facts == {"items": ["one", "two", "three"]}
    assert r.last_state == "work" and r.next_state == "done" and r.finished["exit_code"] == 0
    left = [e for e in events if e["event"] == "state_left"]
    assert [(e["state"], e["outcome"], e["to"]) for e in left] == [("items", "next", "work"), ("work", "next", "done")]


def test_damaged_lines_are_shown_as_damaged_and_other_runs_still_list(home):
    runs = home / ".nemoclaw" / "runs"
    runs.mkdir(parents=True)
    good = runs / "20261201T000000000Z-aaaaaa.jsonl"
    good.write_text(json.dumps({"ts": "t", "run": good.stem, "event": "run_started", "workflow": "backup-all",
                                "options": {}}) + "\n" + json.dumps({"ts": "t", "run": good.stem, "event": "run_finished",
                                                                      "terminal": "done", "exit_code": 0}) + "\n")
    bad = runs / "20261201T000001000Z-bbbbbb.jsonl"
    bad.write_bytes(b"\xff\xfe not utf-8\n[1, 2]\n" + json.dumps({"run": bad.stem, "event": "run_started",
                                                                  "workflow": 5, "options": "x"}).encode() + b"\n{\"torn\n")
    rows = {r["run"]: r for r in (summarize(good), summarize(bad))}
    assert rows[good.stem]["status"] == "finished"
    assert [d["line"] for d in rows[bad.stem]["damaged_lines"]] == [1, 2, 3, 4]  # line 3: wrong types
    listed = invoke("runs", "list", env={"HOME": str(home)})
    assert listed.returncode == 0, listed.stderr
    assert good.stem in listed.stdout and bad.stem in listed.stdout
    assert "damaged journal lines: 1, 2, 3, 4" in listed.stdout
    shown = invoke("runs", "show", bad.stem[:22], env={"HOME": str(home)})
    assert shown.returncode == 0
    assert "(line 1: damaged, not UTF-8)" in shown.stdout


def test_a_full_disk_degrades_the_journal_to_a_warning_and_stops_before_changing_anything(tmp_path, home):
    spec = spec_of(tmp_path, "t-full", """\
        name: t-full
        summary: Reads, then changes the world.
        lock: false
        initial: look
        states:
          look: {do: t_ok, next: change}
          change: {do: t_mark, with: {label: changed}, resume: retry, next: done}
        """)
    out = reporter()
    journal = Journal(Path("/dev/full"), "full-run", warn=out.error)  # every write fails with ENOSPC
    assert journal.write("run_started", workflow="t-full") is False
    assert journal.broken and "No space left on device" in journal.broken
    assert "Warning: cannot write the run journal: No space left on device" in out.stderr.getvalue()

    import orchestrator.engine.run as run_mod

    real = run_mod.Journal
    run_mod.Journal = lambda path, run_id, warn=None: real(Path("/dev/full"), run_id, warn=warn)
    try:
        result = run_workflow(spec, {}, paths=Paths(home), out=out)
    finally:
        run_mod.Journal = real
    assert (result.terminal, result.exit_code) == ("failed", 1)
    assert "ok in t-full" in out.stdout.getvalue()  # the read-only state ran
    assert "Stopping before state 'change': it changes sandboxes or backups, and the run journal cannot be written" in out.stderr.getvalue()
    assert not (home / "marks").exists()


def test_ended_reads_only_the_tail_and_says_false_when_it_cannot_tell(tmp_path, home):
    from orchestrator.engine.journal import ended

    spec = spec_of(tmp_path, "t-end", """\
        name: t-end
        summary: One state.
        initial: one
        states:
          one: {do: t_ok, next: done}
        """)
    result = run_workflow(spec, {}, paths=Paths(home), out=reporter())
    path = home / ".nemoclaw" / "runs" / f"{result.run_id}.jsonl"
    assert ended(path) is True
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")  # as if killed before its end
    assert ended(path) is False
    path.write_text("\n".join(lines[:-1]) + "\n{\"torn")
    assert ended(path) is False
