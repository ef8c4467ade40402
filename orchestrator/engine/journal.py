"""The run journal: one JSON object per line under ~/.nemoclaw/runs/<run-id>.jsonl.

It is the run's event log and its write-ahead log at once. Before a state's step starts the
engine records `state_entered`, after it ends `state_left` with the outcome, the destination and
the facts the step wrote; both are fsync'ed, so after a crash the journal says exactly where the
run was and what it knew. `replay()` rebuilds that from the file alone: a new process resumes
the run from it (engine/resume.py).

Writing never crashes a run: a failed write (a full disk, say) turns into one warning and the
journal reports itself `broken`, which the engine uses to stop before a step that changes the
world (a crash there could not be finished by the next run). Reading never crashes either: a
damaged line is kept as damaged, and the other lines and the other runs still read.
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
        self._warn = warn
        self._fd: int | None = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as exc:
                self._fail(exc)

    def write(self, event: str, *, run: str | None = None, **fields: Any) -> bool:
        """Append one event (durably for the DURABLE ones); False when it could not be written."""
        if self._fd is None:
            return self.path is None
        record = {"ts": utc_now_iso(), "run": run or self.run_id, "event": event}
        record.update(fields)
        data = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode("utf-8")
        try:
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


# --- reading --------------------------------------------------------------------------------------


@attrs.frozen
class Damaged:
    line: int
    problem: str


def read_journal(path: Path) -> tuple[list[dict[str, Any]], list[Damaged]]:
    """Every well-formed event of a journal, and the lines that are not (never raises for
    content). A torn last line of a killed run counts as damaged too."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [Damaged(0, f"unreadable: {exc.strerror or exc}")]
    events: list[dict[str, Any]] = []
    damaged: list[Damaged] = []
    for no, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            damaged.append(Damaged(no, "not UTF-8"))
            continue
        except json.JSONDecodeError as exc:
            damaged.append(Damaged(no, f"not JSON ({exc.msg})"))
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("event"), str) or not isinstance(doc.get("run"), str):
            damaged.append(Damaged(no, "not an event object"))
            continue
        events.append(doc)
    return events, damaged


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


def read_events(path: Path) -> list[dict[str, Any]]:
    return read_journal(path)[0]


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


def replay(events: list[dict[str, Any]], run_id: str) -> Replay:
    """Fold the events of `run_id` into a Replay (children's events are kept apart). An event
    whose fields have the wrong types is skipped and listed as damaged."""
    r = Replay(run_id)
    for e in events:
        kind = e.get("event")
        if e.get("run") != run_id:
            continue
        problem = _well_typed(e)
        if problem is not None:
            r.damaged.append(Damaged(0, problem))
            continue
        if kind == "run_started" or kind == "child_started":
            r.workflow = e["workflow"]
            r.source = e.get("source") if isinstance(e.get("source"), str) else None
            r.options = dict(e["options"])
            r.started = e.get("ts") if isinstance(e.get("ts"), str) else None
            r.owner = e.get("owner")
        elif kind == "run_resumed":
            r.owner = e.get("owner")
        elif kind == "state_entered":
            r.in_state = e["state"]
            r.in_state_since = e.get("ts") if isinstance(e.get("ts"), str) else None
        elif kind == "step_failed":
            r.last_error_state, r.last_error = e.get("state"), str(e.get("error") or "")
        elif kind == "state_left":
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


def owner_alive(owner: Any) -> bool:
    """The run's process still runs (the same one: pid reuse and reboots are told apart)."""
    try:
        return Owner.from_json(owner).is_alive()
    except (ValueError, TypeError, KeyError, AttributeError):
        return False


def status_of(r: Replay) -> str:
    """finished | abandoned | superseded | running | interrupted."""
    if r.finished is not None:
        return "finished"
    if r.abandoned is not None:
        return "superseded" if r.abandoned.get("event") == "run_superseded" else "abandoned"
    return "running" if owner_alive(r.owner) else "interrupted"


def summarize(path: Path) -> dict[str, Any]:
    """One row of `nemoclaw runs list` (never raises for a damaged log)."""
    events, damaged = read_journal(path)
    r = replay(events, path.stem)
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
        "stopped_in": r.stopped_in if status == "interrupted" else None,
        "resumable": status == "interrupted",
        "damaged_lines": [attrs.asdict(d) for d in damaged + r.damaged],
    }
