"""Paths too deep for Docker's archive: found by a walk inside the sandbox, never lost in silence.

Docker's archive of a container path (`get_archive`) leaves out, without a word, every entry it
cannot `lstat`: one whose path is longer than PATH_MAX (4,095 bytes) where the engine walks it
(inside the container's root, or under its root on the host on some storage drivers). Such a
file is legal in the sandbox (made with relative paths) and would simply be missing from the
backup, and a whole-home restore, which empties the home first, would delete it.

So before the archive is read (`probe`, through `exec`: it cannot run in a paused container)
`find` lists, inside the sandbox, every entry whose path has at least `PROBE_MIN` bytes, far
below any engine's limit: usually none. `find` says `File name too long` for an entry it cannot
name either (busybox); GNU find walks by directory fd and lists it. After the archive,
`missing_from` names every listed entry the archive did not hold, and such a backup fails
(docs/backups.md, "Long paths"). Restore refuses to clear a home holding such an entry that the
backup does not hold (`refuse_to_clear`).

A stopped sandbox cannot be walked (exec needs it running, and starting it is OpenShell's
business), so `fail_unwalked` judges from the archive alone: an entry Docker left out has a
parent at most NAME_MAX + 1 bytes shorter, and the deepest ancestor that fit is in the archive.
So an archive none of whose directories reaches `PROBE_MIN - 256` bytes can have lost nothing
(their children stay below `PROBE_MIN`, far below any engine's limit); one that does fails.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from typing import Any, cast

import attrs

from .archive import ArchiveResult
from .errors import RestoreError
from .records import Record, Rejected, short_path

__all__ = ["PROBE_MIN", "DeepPaths", "fail_missing", "fail_unwalked", "probe", "missing_from", "refuse_to_clear"]

#: Entries with a path of at least this many bytes are listed (Docker's limit is near 4,095).
PROBE_MIN = 3072
_TOO_LONG = re.compile(r"^find: (.*): File name too long$")
REASON = "its path is past Docker's archive path limit (the engine leaves it out of the archive)"


@attrs.frozen
class DeepPaths:
    """What the walk of `base` found: entries (relative to `base`) with long paths, and those
    `find` could not name at all; `error` when the walk itself could not run."""

    base: str
    long: tuple[str, ...] = ()
    unnamed: tuple[str, ...] = ()
    error: str | None = None


def _find_argv(base: str, min_len: int) -> list[str]:
    # `-path` with min_len '?' then '*' matches a path of at least min_len characters (in the C
    # locale of exec: bytes); '?' and '*' match '/' there. Sockets are left out, as Docker does.
    return ["find", base, "!", "-type", "s", "-path", "?" * min_len + "*", "-print0"]


def probe(container: Any, base: str, *, min_len: int = PROBE_MIN) -> DeepPaths:
    """Walk `base` in the (running) container as uid 0."""
    base = base.rstrip("/") or "/"
    try:
        rc, (out, err) = container.exec_run(_find_argv(base, min_len), user="0", demux=True)
    except Exception as exc:  # noqa: BLE001 - the docker SDK's errors: the walk could not run
        return DeepPaths(base, error=f"cannot walk {base} in the sandbox: {exc}")
    text = (err or b"").decode("utf-8", "surrogateescape")
    if rc == 127 or "not found" in text and not out:
        return DeepPaths(base, error=f"cannot walk {base} in the sandbox: `find` is not there")
    lead = base.rstrip("/") + "/"
    long = tuple(rel for rel in (_rel(p.decode("utf-8", "surrogateescape"), lead) for p in (out or b"").split(b"\0"))
                 if rel)
    unnamed = tuple(rel for rel in (_rel(m[1], lead) for m in map(_TOO_LONG.match, text.splitlines()) if m) if rel)
    return DeepPaths(base, long=long, unnamed=unnamed)


def _rel(path: str, lead: str) -> str | None:
    return path[len(lead):] if path.startswith(lead) and len(path) > len(lead) else None


def missing_from(deep: DeepPaths, archive: ArchiveResult, *, prefix: str = "",
                 wanted: Callable[[str], bool] | None = None) -> list[Rejected]:
    """The entries the walk found that the archive does not hold (as rejected entries, named):
    `prefix` puts the walked paths where the records have them; `wanted(path)` false leaves
    a path out (excluded, or outside what this capture reads)."""
    held = {r.path for r in cast("tuple[Record | Rejected, ...]", (*archive.files, *archive.dirs, *archive.symlinks, *archive.skipped, *archive.rejected))}
    out: list[Rejected] = []
    for rel in (*deep.long, *deep.unnamed):
        path = posixpath.join(prefix, rel) if prefix else rel
        if (wanted is None or wanted(path)) and path not in held:
            out.append(Rejected(path, REASON))
    return out


def refuse_to_clear(deep: DeepPaths, held: Iterable[str], *, keep: Callable[[str], bool],
                    archivable: Callable[[str], bool], where: str) -> None:
    """RestoreError, before anything is removed, when `where` holds an entry past Docker's limit
    (one `find` could not name, or one the engine cannot stat: `archivable(path)` false) that
    the backup does not hold: no backup could hold it, and clearing would delete it."""
    have = set(held)
    lost = [p for p in deep.unnamed if p not in have and not keep(p)]
    lost += [p for p in deep.long if p not in have and not keep(p) and not archivable(p)]
    if lost:
        more = f" (and {len(lost) - 1} more)" if len(lost) > 1 else ""
        raise RestoreError(
            f"refusing to restore into {where}: it holds {short_path(lost[0])}{more}, whose path is past Docker's "
            "archive path limit, so the backup does not hold it and clearing the home would delete it; nothing was "
            "changed. Move it to a shorter path in the sandbox, then rerun"
        )


def fail_missing(capture: Any, deep: DeepPaths, *, wanted: Callable[[str], bool]) -> None:
    """Make `capture` (a capture.Capture) fail, naming them, for the entries the walk found that
    its archive does not hold, or when the walk could not run (nothing could then tell whether
    Docker left something out)."""
    if deep.error is not None:
        capture.failed_dirs[f"{deep.base} (not checked for paths past Docker's archive limit)"] = deep.error
        return
    missing = missing_from(deep, capture.archive, wanted=wanted)
    if missing:
        capture.archive.rejected.extend(missing)
        n = len(missing)
        capture.failed_dirs[short_path(missing[0].path, 60)] = (
            f"{n} entr{'y' if n == 1 else 'ies'} missing from Docker's archive: {REASON}; move "
            f"{'it' if n == 1 else 'them'} to a shorter path in the sandbox, then rerun")


#: A directory this deep may have had a child past Docker's limit (see the module docstring).
UNWALKED_MAX = PROBE_MIN - 256


def fail_unwalked(capture: Any, base: str, *, sandbox: str) -> None:
    """For a capture read from a stopped container (no walk possible): fail it when one of its
    directories is deep enough that Docker may have left a child out without a word."""
    lead = base.rstrip("/") + "/"
    near = [d.path for d in capture.archive.dirs
            if len((lead + d.path).encode("utf-8", "surrogateescape")) >= UNWALKED_MAX]
    if near:
        capture.failed_dirs[short_path(near[0], 60)] = (
            f"a directory {UNWALKED_MAX}+ bytes deep in a stopped sandbox, which cannot be checked for paths past "
            f"Docker's archive path limit without running it; start it (`openshell sandbox start {sandbox}`) "
            "and rerun, or move that tree to a shorter path")
