"""The one timestamp format of the files we write (journal events, owner records, the gateway
marker): UTC, milliseconds, `Z` (what JavaScript's Date.toISOString writes, as NemoClaw does)."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now_iso() -> str:
    """`2026-12-01T22:45:00.123Z`."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
