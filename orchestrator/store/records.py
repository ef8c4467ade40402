"""Value types shared by the archive reader, the manifest and restore: what one backed-up entry is.

Paths are POSIX, relative to the backup root (e.g. `agents/main/sessions/s1.jsonl`). Modes are
permission bits only (0o777): setuid/setgid/sticky are never kept.
"""

from __future__ import annotations

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
