"""The run's event log: one JSON object per line under ~/.nemoclaw/runs/<run-id>.jsonl.

Appended and flushed event by event, so a killed run still leaves what it did up to then.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..store.staging import Owner


def new_run_id() -> str:
    """Sortable by start time (ms), unique enough for concurrent runs: 20261129T214500123Z-3f9a1c."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-" + secrets.token_hex(3)


class EventLog:
    def __init__(self, path: Path | None, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._fh = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, event: str, **fields: Any) -> None:
        if self._fh is None:
            return
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "run": self.run_id, "event": event}
        record.update(fields)
        self._fh.write(json.dumps(record, default=str) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_events(path: Path) -> list[dict[str, Any]]:
    """Read a log back, skipping a torn last line of a killed run."""
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def run_logs(runs_dir: Path) -> Iterator[Path]:
    if not runs_dir.is_dir():
        return iter(())
    return iter(sorted((p for p in runs_dir.glob("*.jsonl")), key=lambda p: p.name, reverse=True))


def summarize(path: Path) -> dict[str, Any]:
    """One row of `nemoclaw runs list`."""
    events = read_events(path)
    start = next((e for e in events if e["event"] == "run_started"), {})
    end = next((e for e in reversed(events) if e["event"] == "run_finished"), None)
    return {
        "run": path.stem,
        "workflow": start.get("workflow", "?"),
        "started": start.get("ts", "?"),
        "terminal": end.get("terminal") if end else None,
        "exit_code": end.get("exit_code") if end else None,
        "duration_s": end.get("duration_s") if end else None,
        "pid": start.get("pid"),
        "status": "finished" if end else ("running" if _owner_alive(start.get("owner")) else "interrupted"),
    }


def _owner_alive(owner: Any) -> bool:
    """The run's process still runs (the same one: pid reuse and reboots are told apart)."""
    try:
        return Owner.from_json(owner).is_alive()
    except ValueError:
        return False

