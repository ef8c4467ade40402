"""Who runs: the owner record of a staging area, a lock or a paused container, and telling a
live process from a dead one without trusting a pid alone (start time and boot id too)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import attrs

from .clock import utc_now_iso


def hostname() -> str:
    return socket.gethostname()


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def process_start_ticks(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22), or None.

    Recorded next to a pid so that a recycled pid is not mistaken for the original process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return int(rest[19])  # field 22 overall; rest starts at field 3
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, start_ticks: int | None = None, boot: str | None = None) -> bool:
    """True if `pid` runs on this host and is the same process that recorded (start_ticks, boot)."""
    if pid <= 0:
        return False
    if boot is not None and boot_id() not in (None, boot):
        return False  # recorded before a reboot: every pid of that boot is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: kill(0) is all we can know
    fields = raw[raw.rfind(")") + 2 :].split()
    if fields and fields[0] == "Z":
        return False  # a zombie answers kill(pid, 0) but runs nothing
    if start_ticks is not None and len(fields) > 19 and fields[19].isdigit():
        if int(fields[19]) != start_ticks:
            return False  # pid recycled by another process
    return True


@attrs.frozen
class Owner:
    """Who created a staging area (or holds a lock); enough to tell if it is still alive."""

    pid: int
    host: str
    run_id: str
    started_at: str
    proc_start: int | None = None
    boot_id: str | None = None

    @classmethod
    def current(cls, run_id: str) -> "Owner":
        pid = os.getpid()
        return cls(
            pid=pid,
            host=hostname(),
            run_id=run_id,
            started_at=utc_now_iso(),
            proc_start=process_start_ticks(pid),
            boot_id=boot_id(),
        )

    def to_json(self) -> dict[str, object]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: object) -> "Owner":
        """Strict parse; raises ValueError on any wrong shape."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        want = {"pid": int, "host": str, "run_id": str, "started_at": str}
        for key, typ in want.items():
            if not isinstance(data.get(key), typ) or isinstance(data.get(key), bool):
                raise ValueError(f"field {key!r} missing or not {typ.__name__}")
        for key in ("proc_start",):
            if data.get(key) is not None and (not isinstance(data[key], int) or isinstance(data[key], bool)):
                raise ValueError(f"field {key!r} is not an integer")
        if data.get("boot_id") is not None and not isinstance(data["boot_id"], str):
            raise ValueError("field 'boot_id' is not a string")
        return cls(
            pid=data["pid"],
            host=data["host"],
            run_id=data["run_id"],
            started_at=data["started_at"],
            proc_start=data.get("proc_start"),
            boot_id=data.get("boot_id"),
        )

    def is_alive(self) -> bool:
        """Alive on this host. A process on another host cannot be checked: counted alive."""
        if self.host != hostname():
            return True
        return pid_alive(self.pid, self.proc_start, self.boot_id)
