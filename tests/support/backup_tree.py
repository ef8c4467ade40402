"""The files of a test backup, written the way backup-all writes them: a source tree packed and
extracted through the archive code into `<root>/<sandbox>/<ts>/`. The caller writes the manifest."""

from __future__ import annotations

from pathlib import Path

from orchestrator.store import extract_stream
from orchestrator.store.archive import ArchiveResult, pack_directory


def extract_backup_files(root: Path, sandbox: str, ts: str, files: dict[str, bytes]) -> tuple[Path, list[str], ArchiveResult]:
    """(the backup directory, its top-level names, the extraction result)."""
    src = root.parent / "src" / f"{sandbox}-{ts}"
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    dest = root / sandbox / ts
    dest.mkdir(parents=True)
    tops = sorted({r.split("/")[0] for r in files})
    return dest, tops, extract_stream(pack_directory(src, tops), dest)
