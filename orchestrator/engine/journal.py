"""The run journal: one JSON object per line under ~/.nemoclaw/runs/<run-id>.jsonl.

It is the run's event log and its write-ahead log at once. Before a state's step starts the
engine records `state_entered`, after it ends `state_left` with the outcome, the destination and
the facts the step wrote; both are fsync'ed, so after a crash the journal says exactly where the
run was and what it knew. `replay()` rebuilds that from the file alone: a new process resumes
the run from it (engine/resume.py).

Writing never crashes a run: a failed write (a full disk, say) turns into one warning and the
journal reports itself `broken`, which the engine uses to stop before a step that changes the
world (a crash there could not be finished by the next run). A line is appended whole: a
signal waits until it is written (engine/signals.py). Reading never crashes either: a damaged
line is kept as damaged, and the other lines and the other runs still read; but a run whose
journal has a damaged line (or a fact that does not fit its type) is *damaged*, never resumed
on a guess (engine/resume.py). Only the last line of a killed run may be incomplete (*torn*):
that is the write the kill cut off, and the run resumes from the line before it.

`run_started` carries the journal's format (`format`, JOURNAL_FORMAT); a journal without one
is format 1, what we wrote before the field existed, and reads the same.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from ..kernel.clock import utc_now_iso
from ..kernel.owner import Owner
from .signals import critical

JOURNAL_FORMAT = 2
"""The format `run_started` records. 1 (no `format` field): before it existed. 2: facts are
read strictly, and an interrupted run may record `run_interrupted` (not an end)."""

# Events that are made durable (fsync) before the run goes on.
DURABLE = frozenset({"run_started", "run_resumed", "state_entered", "state_left", "item_started",
                     "item_finished", "run_finished", "run_abandoned", "run_superseded"})


def new_run_id() -> str:
    """Sortable by start time (ms), unique enough for concurrent runs: 20261129T214500123Z-3f9a1c."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-" + secrets.token_hex(3)


class Journal:
    """Appends events of one top-level run (and its foreach children) to its file."""

    def __init__(self, path: Path | None, run_id: str, *, warn: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.run_id = run_id
        self.broken: str | None = None
        # Set by the engine when the run enters a state that changes the world: an interrupt
        # from then on leaves the run to be finished by the next command (engine/run.py).
        self.changed = False
        self._warn = warn
        self._fd: int | None = None
        self._dropped = 0
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._dropped = _drop_torn_tail(path)
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as exc:
                self._fail(exc)
            if self._dropped:
                self.write("journal_repaired", dropped_bytes=self._dropped,
                           note="an incomplete last line (a write cut off by a kill) was removed before appending")

    def write(self, event: str, *, run: str | None = None, **fields: Any) -> bool:
        """Append one event (durably for the DURABLE ones); False when it could not be written."""
        if self._fd is None:
            return self.path is None
        record = {"ts": utc_now_iso(), "run": run or self.run_id, "event": event}
        record.update(fields)
        data = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            with critical():  # a signal waits for the whole line (and its fsync)
                view = memoryview(data)
                while view:
                    n = os.write(self._fd, view)
                    view = view[n:]
                if event in DURABLE:
                    os.fsync(self._fd)
        except OSError as exc:
            self._fail(exc)
            return False
        return True

    def _fail(self, exc: OSError) -> None:
        if self.broken is None:
            self.broken = f"{exc.strerror or exc} ({self.path})"
            if self._warn is not None:
                self._warn(f"  Warning: cannot write the run journal: {self.broken}. "
                           "The run goes on, but stops before any step that changes sandboxes or backups.")
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _drop_torn_tail(path: Path) -> int:
    """Before appending to an existing journal: an incomplete last line (a write a kill cut
    off) is removed, so the next line does not run into it; a complete last line that only
    lacks its newline gets one. Returns the bytes removed."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            fh.seek(max(0, size - 65536))
            tail = fh.read()
    except FileNotFoundError:
        return 0
    if tail.endswith(b"\n"):
        return 0
    cut = tail.rfind(b"\n")
    if cut < 0 and size > len(tail):
        return 0  # a last line longer than we look at: leave it, reading calls it damaged
    last = tail[cut + 1:]
    if _parse_line(last)[0] is not None:
        with open(path, "ab") as fh:
            fh.write(b"\n")
        return 0
    os.truncate(path, size - len(last))
    return len(last)


# --- reading --------------------------------------------------------------------------------------


@attrs.frozen
class Damaged:
    line: int
    problem: str
    # The incomplete last line of a killed run (the write the kill cut off): not damage.
    torn: bool = False


def _parse_line(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        doc = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg})"
    if not isinstance(doc, dict) or not isinstance(doc.get("event"), str) or not isinstance(doc.get("run"), str):
        return None, "not an event object"
    return doc, None


def read_numbered(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[Damaged]]:
    """Every well-formed event of a journal with its line number, and the lines that are not
    (never raises for content). An incomplete last line (no newline) is `torn`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [Damaged(0, f"unreadable: {exc.strerror or exc}")]
    events: list[tuple[int, dict[str, Any]]] = []
    damaged: list[Damaged] = []
    lines = raw.split(b"\n")
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        doc, problem = _parse_line(line)
        if doc is None:
            torn = no == len(lines) and not raw.endswith(b"\n")
            damaged.append(Damaged(no, "incomplete last line (a write cut off by a kill)" if torn else str(problem), torn))
            continue
        events.append((no, doc))
    return events, damaged


def read_journal(path: Path) -> tuple[list[dict[str, Any]], list[Damaged]]:
    """Every well-formed event of a journal, and the lines that are not (never raises for
    content); see read_numbered."""
    numbered, damaged = read_numbered(path)
    return [e for _, e in numbered], damaged


END_EVENTS = frozenset({"run_finished", "run_abandoned", "run_superseded"})


def ended(path: Path) -> bool:
    """The journal's last line is its run's end (finished, abandoned, superseded): read from the
    tail only, so looking for interrupted runs does not parse every journal ever written. False
    means "read it whole to know"."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 65536))
            tail = fh.read()
    except OSError:
        return False
    lines = [ln for ln in tail.split(b"\n") if ln.strip()]
    if not lines:
        return False
    try:
        last = json.loads(lines[-1].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(last, dict) and last.get("event") in END_EVENTS and last.get("run") == path.stem


def run_logs(runs_dir: Path) -> Iterator[Path]:
    try:
        names = sorted((p for p in runs_dir.glob("*.jsonl") if p.is_file() and not p.is_symlink()),
                       key=lambda p: p.name, reverse=True)
    except OSError:
        return iter(())
    return iter(names)


# --- replay ---------------------------------------------------------------------------------------


@attrs.define
class Replay:
    """What a journal says of one run (a top-level run or a foreach child)."""

    run_id: str
    workflow: str | None = None
    source: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)
    started: str | None = None
    owner: Any = None
    facts: dict[str, Any] = attrs.field(factory=dict)  # raw (journal form)
    # The state whose step had started and not ended (interrupted there), if any.
    in_state: str | None = None
    in_state_since: str | None = None
    # The destination of the last completed state (where the run was going next).
    next_state: str | None = None
    last_state: str | None = None
    last_error_state: str | None = None
    last_error: str | None = None
    finished: dict[str, Any] | None = None
    abandoned: dict[str, Any] | None = None
    # foreach bookkeeping of this run: item -> {"child": id, "result": {...} | None}
    items: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    damaged: list[Damaged] = attrs.field(factory=list)

    @property
    def ended(self) -> bool:
        return self.finished is not None or self.abandoned is not None

    @property
    def stopped_in(self) -> str | None:
        return self.in_state or self.next_state


_FIELD_TYPES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "run_started": {"workflow": str, "options": dict},
    "child_started": {"workflow": str, "options": dict},
    "state_entered": {"state": str},
    "state_left": {"state": str, "outcome": str},
    "item_started": {"item": (str, int)},
    "item_finished": {"item": (str, int)},
}


def _well_typed(e: dict[str, Any]) -> str | None:
    """Why an event's fields do not have the types replay relies on (None when they do)."""
    for key, typ in _FIELD_TYPES.get(e["event"], {}).items():
        if not isinstance(e.get(key), typ) or isinstance(e.get(key), bool):
            return f"event '{e['event']}': field '{key}' is missing or of the wrong type"
    for key, typ in (("facts", dict), ("to", str), ("options", dict)):
        if key in e and e[key] is not None and not isinstance(e[key], typ):
            return f"event '{e['event']}': field '{key}' is of the wrong type"
    return None


FactCheck = Callable[[str, Any], Any]
"""Loads one fact from its journal form, raising ValueError when it does not fit (engine/facts.py
`load`, once the step libraries have declared the facts: resume.fact_check)."""


def replay(events: list[dict[str, Any]], run_id: str, lines: list[int] | None = None,
           check_fact: FactCheck | None = None) -> Replay:
    """Fold the events of `run_id` into a Replay (children's events are kept apart). An event
    whose fields have the wrong types, or (with `check_fact`) a fact that does not fit its
    declared type, is listed as damaged (with its line, when `lines` gives each event's line)."""
    r = Replay(run_id)
    for index, e in enumerate(events):
        kind = e.get("event")
        if e.get("run") != run_id:
            continue
        line = lines[index] if lines is not None else 0
        problem = _well_typed(e)
        if problem is not None:
            r.damaged.append(Damaged(line, problem))
            continue
        if kind == "run_started" or kind == "child_started":
            r.workflow = e["workflow"]
            r.source = e.get("source") if isinstance(e.get("source"), str) else None
            r.options = dict(e["options"])
            r.started = e.get("ts") if isinstance(e.get("ts"), str) else None
            r.owner = e.get("owner")
            fmt = e.get("format", 1)
            if kind == "run_started" and (not isinstance(fmt, int) or isinstance(fmt, bool) or not 1 <= fmt <= JOURNAL_FORMAT):
                r.damaged.append(Damaged(line, f"journal format {fmt!r}, which this nemoclaw does not read "
                                               f"(it reads formats 1 to {JOURNAL_FORMAT})"))
        elif kind == "run_resumed":
            r.owner = e.get("owner")
        elif kind == "state_entered":
            r.in_state = e["state"]
            r.in_state_since = e.get("ts") if isinstance(e.get("ts"), str) else None
        elif kind == "step_failed":
            r.last_error_state, r.last_error = e.get("state"), str(e.get("error") or "")
        elif kind == "state_left":
            for name, raw in (e.get("facts") or {}).items() if check_fact is not None else ():
                try:
                    check_fact(name, raw)  # type: ignore[misc]  # not None: the loop runs only with it
                except ValueError as exc:
                    r.damaged.append(Damaged(line, f"event 'state_left' of state '{e['state']}': {exc}"))
            r.facts.update(e.get("facts") or {})
            r.last_state, r.in_state = e["state"], None
            r.next_state = e.get("to")
        elif kind == "item_started":
            r.items[str(e["item"])] = {"child": e.get("child"), "result": None}
        elif kind == "item_finished":
            slot = r.items.setdefault(str(e["item"]), {"child": e.get("child"), "result": None})
            slot["result"] = {k: e.get(k) for k in ("terminal", "exit_code", "reason", "message")}
        elif kind == "run_finished":
            r.finished = e
        elif kind in ("run_abandoned", "run_superseded"):
            r.abandoned = e
    return r


def load_run(path: Path, run_id: str | None = None,
             check_fact: FactCheck | None = None) -> tuple[list[dict[str, Any]], Replay]:
    """A journal's events and the replay of `run_id` (default the journal's own run), whose
    `damaged` also lists the journal's unreadable lines (any of them may have been this run's),
    but not a torn last line."""
    numbered, damaged = read_numbered(path)
    events = [e for _, e in numbered]
    r = replay(events, run_id or path.stem, [no for no, _ in numbered], check_fact)
    r.damaged = sorted([d for d in damaged if not d.torn] + r.damaged, key=lambda d: d.line)
    return events, r


def owner_alive(owner: Any) -> bool:
    """The run's process still runs (the same one: pid reuse and reboots are told apart)."""
    try:
        return Owner.from_json(owner).is_alive()
    except (ValueError, TypeError, KeyError, AttributeError):
        return False


def status_of(r: Replay) -> str:
    """finished | abandoned | superseded | running | interrupted | damaged (interrupted, but its
    journal cannot be read whole: never resumed)."""
    if r.finished is not None:
        return "finished"
    if r.abandoned is not None:
        return "superseded" if r.abandoned.get("event") == "run_superseded" else "abandoned"
    if owner_alive(r.owner):
        return "running"
    return "damaged" if r.damaged or r.workflow is None else "interrupted"


def summarize(path: Path, check_fact: FactCheck | None = None) -> dict[str, Any]:
    """One row of `nemoclaw runs list` (never raises for a damaged log)."""
    _, r = load_run(path, check_fact=check_fact)
    damaged = r.damaged
    end = r.finished or {}
    status = status_of(r) if r.workflow is not None else "damaged"
    return {
        "run": path.stem,
        "workflow": r.workflow or "?",
        "started": r.started or "?",
        "terminal": end.get("terminal"),
        "exit_code": end.get("exit_code"),
        "duration_s": end.get("duration_s"),
        "status": status,
        "stopped_in": r.stopped_in if status in ("interrupted", "damaged") else None,
        "resumable": status == "interrupted",
        "damaged_lines": [{"line": d.line, "problem": d.problem} for d in damaged],
    }
