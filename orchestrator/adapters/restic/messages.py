"""restic's `--json` output as records, read with cattrs.

restic adds fields between releases, so unknown keys are ignored here (unlike the strict
converter for files a person wrote); a missing required field or a wrong type is an error.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import attrs
import cattrs

T = TypeVar("T")

TAG_PREFIX = "nemoclaw"
"""Every snapshot we make carries this tag; snapshots without it are someone else's."""


@attrs.frozen
class Snapshot:
    id: str
    short_id: str
    time: str
    hostname: str
    paths: list[str] = attrs.field(factory=list)
    tags: list[str] = attrs.field(factory=list)
    tree: str = ""

    def tag(self, key: str) -> str | None:
        """The value of our `key=value` tag, or None."""
        prefix = f"{key}="
        return next((t[len(prefix):] for t in self.tags if t.startswith(prefix)), None)


@attrs.frozen
class BackupStatus:
    message_type: str
    percent_done: float = 0.0
    total_files: int = 0
    files_done: int = 0
    total_bytes: int = 0
    bytes_done: int = 0


@attrs.frozen
class BackupSummary:
    message_type: str
    snapshot_id: str
    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    data_added: int = 0
    total_files_processed: int = 0
    total_bytes_processed: int = 0
    total_duration: float = 0.0


@attrs.frozen
class BackupError:
    message_type: str
    error: Any = None
    during: str = ""
    item: str = ""


@attrs.frozen
class Stats:
    total_size: int
    total_file_count: int = 0
    snapshots_count: int = 0


_conv = cattrs.Converter(forbid_extra_keys=False)


def structure(data: Any, cls: type[T]) -> T:
    return _conv.structure(data, cls)


def parse_json(text: str, cls: Any) -> Any:
    """One JSON document of restic's stdout as `cls` (e.g. `list[Snapshot]`)."""
    return _conv.structure(json.loads(text), cls)


def parse_backup_line(line: str) -> BackupStatus | BackupSummary | BackupError | None:
    """One line of `restic backup --json`; None for a line that is not one of its messages."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind = data.get("message_type")
    cls = {"status": BackupStatus, "summary": BackupSummary, "error": BackupError}.get(kind)  # type: ignore[arg-type]
    return _conv.structure(data, cls) if cls is not None else None
