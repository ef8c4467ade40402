"""The `summary:` of each workflow file, for the command list of `nemoclaw --help`, without
importing PyYAML when no file changed.

A summary is read with YAML alone (nothing checked, the step library not loaded): None when the
file cannot be read or is not a YAML mapping with a string summary; running or validating the
file checks everything. Each file's summary is kept, with the file's whole text, in a cache
(`Paths.summary_cache`, ~/.nemoclaw/cache/workflow-summaries); a file whose text is not the cached text is read with YAML again, so
the answer is always the one YAML gives for the text on disk. A cache that cannot be read or
written is ignored. The cache is a Python literal (`repr`, read back with `ast.literal_eval`,
which evaluates literals only): click has imported `ast` already, where `json` would cost
--help a few more milliseconds of imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

CACHE_VERSION = 1


def summaries(files: list[Path], cache: Path | None) -> list[str | None]:
    """The summary of each of `files` (None: unreadable, or no string summary)."""
    cached = _load(cache) if cache is not None else {}
    fresh: dict[str, list[str | None]] = {}
    out: list[str | None] = []
    for path in files:
        text = _read(path)
        if text is None:
            out.append(None)
            continue
        hit = cached.get(str(path))
        summary = hit[1] if hit is not None and hit[0] == text else summary_of_text(text)
        fresh[str(path)] = [text, summary]
        out.append(summary)
    if cache is not None and fresh != cached:
        _store(cache, fresh)
    return out


def summary_of_text(text: str) -> str | None:
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    summary = data.get("summary") if isinstance(data, dict) else None
    return summary if isinstance(summary, str) else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _load(cache: Path) -> dict[str, list[str | None]]:
    """The cached entries that have the right shape (anything else is a miss)."""
    try:
        doc = ast.literal_eval(cache.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION or not isinstance(doc.get("files"), dict):
        return {}
    return {
        path: entry for path, entry in doc["files"].items()
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
        and (entry[1] is None or isinstance(entry[1], str))
    }


def _store(cache: Path, entries: dict[str, list[str | None]]) -> None:
    from ..kernel.atomic import write_file_atomic

    try:
        cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_file_atomic(cache, (repr({"version": CACHE_VERSION, "files": entries}) + "\n").encode())
    except OSError:
        pass  # a cache we cannot write is only slower next time
