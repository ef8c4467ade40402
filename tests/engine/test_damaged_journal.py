"""A damaged journal is never a guess: a run whose journal has a line that cannot be read (or a
fact of the wrong type, or a format this version does not read) is *damaged*; it is never
resumed, `runs show` names the line and why, `runs abandon` prints the commands, `runs list`
and read-only runs show it, and a mutating run refuses until it is abandoned. A journal of the
format we ever wrote still resumes (test_golden_journals.py). An incomplete last line (the
write a kill cut off) is not damage.

The interrupted runs are real journals: the golden one of format 1 (tests/engine/golden/; every format is resumed in test_golden_journals.py), or one
written by a forked child SIGKILLed at a state boundary; the runs that follow are in process.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from orchestrator.engine.facts import load
from orchestrator.engine.journal import read_journal, replay

from tests.support.cli import invoke

GOLDEN = Path(__file__).parent / "golden" / "20261203T132833017Z-d1c837.jsonl"


def _runs(home: Path) -> Path:
    d = home / ".nemoclaw" / "runs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def golden_run(home: Path) -> Path:
    """The golden format-1 journal of t-marks, killed in its second item, in this HOME."""
    path = _runs(home) / GOLDEN.name
    shutil.copyfile(GOLDEN, path)
    (home / "marks").write_text("one\n")  # what the killed run had done
    return path


def killed_run(engine, program) -> Path:
    """t-marks SIGKILLed right after entering the second item's state (a real journal)."""
    proc = program.fork("t-marks", env={"NEMOCLAW_TEST_KILL_AT": "t-mark-item:mark:enter:2"})
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    [path] = sorted(_runs(engine.home).glob("*.jsonl"))
    return path


def _rewrite(path: Path, index_of, change) -> int:
    """Change the first line for which `index_of(event)` holds; returns its line number."""
    lines = path.read_text().splitlines(keepends=True)
    for no, line in enumerate(lines, 1):
        if index_of(json.loads(line)):
            lines[no - 1] = change(line)
            path.write_text("".join(lines))
            return no
    raise AssertionError("no such line")


def _items_line(e: dict) -> bool:
    return e["event"] == "state_left" and e["state"] == "items"


def test_a_new_journal_records_its_format(engine):
    r = engine.run("t-commit")
    assert r.returncode == 0
    assert engine.events("t-commit")[0]["format"] == 2


DAMAGE = {
    # The line holding the `items` fact, cut short (as a bad disk or an editor would).
    "torn-fact-line": (lambda line: line[: len(line) // 2] + "\n", "not JSON"),
    # The fact written with the wrong type: a string where a list of strings belongs.
    "fact-of-wrong-type": (lambda line: line.replace('["one", "two", "three"]', '"one two three"'),
                           "fact 'items' does not fit its type: expected a list, got str 'one two three'"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_line_makes_the_run_damaged_never_resumed(engine, damage):
    change, why = DAMAGE[damage]
    path = golden_run(engine.home)
    no = _rewrite(path, _items_line, change)

    listed = invoke("runs", "list", "--json")
    row = next(r for r in json.loads(listed.stdout) if r["run"] == path.stem)
    assert (row["status"], row["resumable"]) == ("damaged", False)
    assert [d["line"] for d in row["damaged_lines"]] == [no] and why in row["damaged_lines"][0]["problem"]
    assert "Damaged runs are not resumed" in invoke("runs", "list").stdout

    shown = invoke("runs", "show", path.stem)
    assert shown.returncode == 0
    assert any(line.startswith(f"  (line {no}: damaged, ") and why in line for line in shown.stdout.splitlines()), shown.stdout
    assert f"  Run {path.stem} is damaged: its journal cannot be read whole, so it is not resumed" in shown.stdout

    # A mutating run refuses, naming the run and what to do; it changes nothing.
    refused = engine.run("t-commit")
    assert refused.returncode == 1
    assert (f"  Run {path.stem} (t-mark-item 'two', stopped in state 'mark' at ") in refused.stderr
    assert f"has a damaged journal (line {no}: " in refused.stderr
    assert f"see `nemoclaw runs show {path.stem}`, then `nemoclaw runs abandon {path.stem}` prints" in refused.stderr
    assert "  Not running t-commit: a damaged run must be given up" in refused.stderr
    assert "Resuming" not in refused.stdout
    assert (engine.home / "marks").read_text().split() == ["one"]
    assert not (engine.home / ".nemoclaw" / "rebuild-backups" / "alpha").exists()

    # `runs resume` refuses too; a read-only run reports it and exits 1.
    resumed = invoke("runs", "resume", path.stem)
    assert resumed.returncode == 1 and f"Run {path.stem} (" in resumed.stderr and "damaged journal" in resumed.stderr
    looked = engine.run("t-look", check=True)
    assert looked.returncode == 1 and f"Run {path.stem} (" in looked.stdout

    # Abandoned, it is out of the way: the next run does its own work.
    gone = invoke("runs", "abandon", path.stem)
    assert gone.returncode == 0, gone.stderr
    assert f"  Abandoning damaged run {path.stem} (" in gone.stdout
    assert f"  Its journal is damaged (line {no}: " in gone.stdout
    assert engine.run("t-commit").returncode == 0


def test_a_journal_of_a_newer_format_is_not_read_as_ours(engine):
    path = golden_run(engine.home)
    _rewrite(path, lambda e: e["event"] == "run_started",
             lambda line: line.replace('"read_only": false', '"read_only": false, "format": 99'))
    refused = engine.run("t-commit")
    assert refused.returncode == 1
    assert "has a damaged journal (line 1: journal format 99, which this nemoclaw does not read" in refused.stderr


def test_an_incomplete_last_line_is_the_write_a_kill_cut_off_and_the_run_resumes(engine, program):
    path = killed_run(engine, program)
    with open(path, "a") as fh:
        fh.write('{"ts": "2026-12-03T00:00:00.000Z", "run": "' + path.stem + '", "event": "state_le')
    row = next(r for r in json.loads(invoke("runs", "list", "--json").stdout) if r["run"] == path.stem)
    assert (row["status"], row["damaged_lines"]) == ("interrupted", [])
    again = engine.run("t-commit")
    assert again.returncode == 0, again.stderr
    assert f"  Resuming interrupted run {path.stem}" in again.stdout
    assert (engine.home / "marks").read_text().split() == ["one", "two", "three"]
    events, damaged = read_journal(path)
    assert not damaged  # the cut-off line was removed before the resumed run appended
    assert any(e["event"] == "journal_repaired" for e in events)


@pytest.mark.parametrize(("fact", "raw"), [
    ("sandbox_deleted", "no"), ("sandbox_deleted", "false"), ("sandbox_deleted", [1]), ("sandbox_deleted", 1),
    ("committed", {"alpha": None}), ("committed", [["alpha", "/x"]]), ("to_rebuild", "alpha"),
    ("to_rebuild", {"alpha": 1}), ("cli_version", 44),
])
def test_facts_are_read_strictly_nothing_is_coerced(fact, raw):
    import orchestrator.steps  # noqa: F401 - declares the built-in facts

    with pytest.raises(ValueError, match=f"fact '{fact}' does not fit its type: expected "):
        load(fact, raw)
    assert load("sandbox_deleted", False) is False and load("committed", {"alpha": "/x"}) == {"alpha": "/x"}


@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_a_lock_path_that_is_not_a_regular_file_is_one_clear_error_before_any_journal(engine, kind):
    lock = engine.home / ".nemoclaw" / "orchestrator.lock"
    lock.parent.mkdir(parents=True)
    if kind == "symlink":
        lock.symlink_to(engine.home / "elsewhere")
    else:
        lock.mkdir()
    r = engine.run("t-hold")
    assert r.returncode == 1
    what = "a symbolic link" if kind == "symlink" else "a directory"
    assert r.stderr.splitlines() == [f"  The lock path {lock} is {what}, not a regular file; "
                                     "move it out of the way and run the command again."]
    assert not list((engine.home / ".nemoclaw").glob("runs/*"))  # nothing for a later run to carry out
    assert not (engine.home / "marks").exists()
    resumed = invoke("runs", "list")
    assert "No runs recorded yet." in resumed.stdout


def test_a_read_only_run_writes_no_journal(engine):
    looked = engine.run("t-look", check=True)
    assert looked.returncode == 0, looked.stderr
    assert not (engine.home / ".nemoclaw" / "runs").exists() or not list((engine.home / ".nemoclaw" / "runs").iterdir())


def test_gateway_check_names_a_damaged_run_and_never_offers_to_resume_it(engine, fake_openshell):
    from tests.support.fakes import gateway_script

    gateway_script(engine.home / "bin" / "openshell-gateway", "0.0.37")
    path = golden_run(engine.home)
    _rewrite(path, _items_line, lambda line: line[: len(line) // 2] + "\n")
    r = invoke("gateway", "check")
    assert r.returncode == 1
    assert f"  Run {path.stem} (" in r.stderr and "has a damaged journal (line " in r.stderr
    assert f"runs abandon {path.stem}" in r.stderr
    assert f"runs resume {path.stem}" not in r.stderr
