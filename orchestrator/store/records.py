"""Value types shared by the archive reader, the manifest and restore: what one backed-up entry is.

Paths are POSIX, relative to the backup root (e.g. `agents/main/sessions/s1.jsonl`). Modes are
mode bits with setuid/setgid/sticky (0o7777), as the sandbox had them (docs/reference/archive-policy.md).
"""

from __future__ import annotations

from typing import TypeAlias

import attrs


@attrs.frozen
class FileRecord:
    path: str
    size: int
    sha256: str
    mode: int


@attrs.frozen
class DirRecord:
    path: str
    mode: int


@attrs.frozen
class LinkRecord:
    path: str
    target: str


@attrs.frozen
class Rejected:
    """An archive entry that was not written, and why (e.g. `absolute path`)."""

    path: str
    reason: str


# A backed-up entry of any kind, where only what they share (`path`) is read.
Record: TypeAlias = FileRecord | DirRecord | LinkRecord


def short_path(path: str, keep: int = 100) -> str:
    """A path as one line of a report can hold: `long/dddd…dddd/f` past `keep` characters."""
    return path if len(path) <= keep else f"{path[: keep * 3 // 5]}…{path[-(keep * 2 // 5):]}"
