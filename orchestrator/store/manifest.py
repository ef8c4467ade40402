"""`rebuild-manifest.json`: what one backup holds, in NemoClaw's format plus per-file hashes.

The upstream fields (docs/backups.md) keep their camelCase names so NemoClaw's own
`listBackups` can read our backups; `files`, `dirs` and `symlinks` are our additions and make a
backup verifiable (size + SHA-256 of every file) and restorable with its modes. Loading is
strict: a manifest with a missing field, a wrong type or an unknown key is a `ManifestError`
naming the file, never a traceback.
"""

from __future__ import annotations

import errno
import hashlib
import json
from json.encoder import encode_basestring as _encode_str  # the C encoder where built
import os
import random
import re
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ..kernel.convert import strict_converter
from ..kernel import atomic
from .errors import ManifestError
from .records import DirRecord, FileRecord, LinkRecord, Record, short_path

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "check_against_agent",
    "Mismatch",
    "StateFile",
    "diff_records",
    "load_manifest",
    "manifest_bytes",
    "new_timestamp",
    "parse_timestamp",
    "verify",
    "write_manifest",
]

MANIFEST_NAME = "rebuild-manifest.json"
MANIFEST_VERSION = 1
_TIMESTAMP_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z$")
_REGISTRY_FILE = re.compile(r"^(sandboxes\.json|gateways/[0-9]{1,5}/sandboxes\.json)$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@attrs.frozen
class StateFile:
    """A single state file (not a directory) and how it was captured (`copy`, `sqlite_backup`)."""

    path: str
    strategy: str


@attrs.frozen
class Manifest:
    version: int
    sandbox_name: str
    timestamp: str
    agent_type: str
    agent_version: str | None
    expected_version: str | None
    state_dirs: list[str]
    backed_up_dirs: list[str]
    state_files: list[StateFile]
    dir: str
    backup_path: str
    blueprint_digest: str | None
    policy_presets: list[str]
    files: list[FileRecord] = attrs.field(factory=list)
    dirs: list[DirRecord] = attrs.field(factory=list)
    symlinks: list[LinkRecord] = attrs.field(factory=list)
    name: str | None = None
    # The image the sandbox ran when it was backed up (to recreate it when it is gone).
    sandbox_image: str | None = None
    # What the backup holds: `agent` (the agent's declared state under `dir`; manifests
    # without the key) or `home` (the whole sandbox home `dir`, minus `excludes`).
    scope: str = "agent"
    excludes: list[str] = attrs.field(factory=list)
    # False when the state was not read with the sandbox frozen throughout (--no-freeze, or the
    # freeze limit was reached: steps/_freeze_limit.py); the key is written only then.
    point_in_time: bool = True
    # The sandbox's NemoClaw registry row as it was at the backup, and the registry file it was
    # in relative to ~/.nemoclaw (`sandboxes.json`, `gateways/<port>/sandboxes.json`): what
    # `rebuild-sandbox --from-backup` registers again on a host that lost its registry
    # (docs/backups.md, "A dead host"). Absent in older manifests.
    registry_row: dict[str, Any] | None = None
    registry_file: str | None = None

    def file_modes(self) -> dict[str, int]:
        """Relative path -> permission bits, for restoring with the original modes."""
        return {**{d.path: d.mode for d in self.dirs}, **{f.path: f.mode for f in self.files}}


# --- (de)serialisation ------------------------------------------------------------------------

_CAMEL = {
    "sandbox_name": "sandboxName",
    "agent_type": "agentType",
    "agent_version": "agentVersion",
    "expected_version": "expectedVersion",
    "state_dirs": "stateDirs",
    "backed_up_dirs": "backedUpDirs",
    "state_files": "stateFiles",
    "backup_path": "backupPath",
    "blueprint_digest": "blueprintDigest",
    "policy_presets": "policyPresets",
    "sandbox_image": "sandboxImage",
    "point_in_time": "pointInTime",
    "registry_row": "registryRow",
    "registry_file": "registryFile",
}


def _make_converter() -> cattrs.Converter:
    conv = strict_converter()
    for cls in (StateFile, FileRecord, DirRecord, LinkRecord):
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True))
    overrides: dict[str, Any] = {k: override(rename=v) for k, v in _CAMEL.items()}
    conv.register_structure_hook(
        Manifest, make_dict_structure_fn(Manifest, conv, _cattrs_forbid_extra_keys=True, **overrides)
    )
    conv.register_unstructure_hook(
        Manifest,
        make_dict_unstructure_fn(Manifest, conv, name=override(omit_if_default=True),
                                 sandbox_image=override(rename="sandboxImage", omit_if_default=True),
                                 excludes=override(omit_if_default=True),
                                 point_in_time=override(rename="pointInTime", omit_if_default=True),
                                 registry_row=override(rename="registryRow", omit_if_default=True),
                                 registry_file=override(rename="registryFile", omit_if_default=True),
                                 **{k: v for k, v in overrides.items()
                                    if k not in ("sandbox_image", "point_in_time", "registry_row", "registry_file")}),
    )
    return conv


_converter = _make_converter()

# NemoClaw's key order (JSON.stringify keeps insertion order), then our additions.
_KEY_ORDER = [
    "version", "sandboxName", "timestamp", "agentType", "agentVersion", "expectedVersion", "stateDirs",
    "backedUpDirs", "stateFiles", "dir", "backupPath", "blueprintDigest", "policyPresets", "name",
    "sandboxImage", "scope", "excludes", "pointInTime", "registryFile", "registryRow", "files", "dirs", "symlinks",
]  # fmt: skip


def manifest_to_dict(m: Manifest) -> dict[str, Any]:
    raw = _converter.unstructure(m)
    return {k: raw[k] for k in _KEY_ORDER if k in raw}


def manifest_from_dict(data: Any, source: object = "<manifest>") -> Manifest:
    if not isinstance(data, dict):
        raise ManifestError(source, "not a JSON object")
    try:
        m = _converter.structure(data, Manifest)
    except Exception as exc:  # cattrs raises exception groups; flatten them into one line
        problems = cattrs.transform_error(exc, path="manifest") if isinstance(exc, cattrs.BaseValidationError) else [str(exc)]
        problems = [re.sub(r"\.(\w+)", lambda mo: "." + _CAMEL.get(mo[1], mo[1]), p) for p in problems]
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ManifestError(source, "invalid manifest: " + "; ".join(problems[:5]) + more) from None
    _check_semantics(m, source)
    return m


def _check_semantics(m: Manifest, source: object) -> None:
    if m.version != MANIFEST_VERSION:
        raise ManifestError(source, f"unsupported manifest version {m.version} (expected {MANIFEST_VERSION})")
    if parse_timestamp(m.timestamp) is None:
        raise ManifestError(source, f"invalid timestamp {m.timestamp!r}")
    if not m.dir.startswith("/") or ".." in m.dir.split("/"):
        raise ManifestError(source, f"dir {m.dir!r} must be an absolute path without '..'")
    if m.registry_file is not None and not _REGISTRY_FILE.match(m.registry_file):
        raise ManifestError(source, f"invalid registry file {m.registry_file!r} (expected sandboxes.json or "
                                    "gateways/<port>/sandboxes.json)")
    if m.registry_row is not None and m.registry_row.get("name", m.sandbox_name) != m.sandbox_name:
        raise ManifestError(source, f"its registry row names another sandbox than {m.sandbox_name!r}")
    if m.scope not in ("agent", "home"):
        raise ManifestError(source, f"unknown scope {m.scope!r} (expected agent or home)")
    for e in m.excludes:
        if e.startswith("/") or any(p in ("", ".", "..") for p in e.split("/")) or "\x00" in e:
            raise ManifestError(source, f"invalid excluded path {e!r}")
    for d in [*m.state_dirs, *m.backed_up_dirs]:
        if not d or "/" in d or d in (".", "..") or "\x00" in d:
            raise ManifestError(source, f"invalid state directory name {d!r}")
    for sf in m.state_files:
        sp = sf.path.split("/")
        if sf.path.startswith("/") or any(p in ("", ".", "..") for p in sp):
            raise ManifestError(source, f"invalid state file path {sf.path!r}")
    seen: set[str] = set()
    for rec in cast("list[Record]", [*m.files, *m.dirs, *m.symlinks]):
        parts = rec.path.split("/")
        if rec.path.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ManifestError(source, f"invalid path {rec.path!r} in manifest")
        if rec.path in seen:
            raise ManifestError(source, f"duplicate path {rec.path!r} in manifest")
        seen.add(rec.path)
    for f in m.files:
        if not _SHA256_RE.match(f.sha256) or f.size < 0 or not 0 <= f.mode <= 0o7777:
            raise ManifestError(source, f"invalid file record for {f.path!r}")


_DISCOVERED_DIR_RE = re.compile(r"^workspace-[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_against_agent(m: Manifest, agent: Any, source: object = "<manifest>") -> None:
    """A backup directory is untrusted input: its manifest is valid only if it describes what the
    agent declares. `dir` is the agent's own directory, every `stateDirs`/`backedUpDirs` entry a
    state dir the agent declares (or NemoClaw's discovered `workspace-*`), every `stateFiles`
    entry one of the agent's state files, and every file, dir and symlink record lies under a
    backed-up dir or is a captured state file (a dir record may also be a state file's parent).
    A symlink's *target* may be anything: links are recorded and restored as links, never
    followed on the host. `agent` is an `AgentSpec` (typed loosely to keep this module free of
    the agent loader)."""
    if m.agent_type != agent.name:
        raise ManifestError(source, f"agentType {m.agent_type!r} is not {agent.name!r}")
    if m.scope == "home":
        _check_home_scope(m, agent, source)
        return
    if m.excludes:
        raise ManifestError(source, "excludes is only valid in a whole-home (scope home) backup")
    if m.dir != agent.dir:
        raise ManifestError(source, f"dir {m.dir!r} is not the {agent.name} agent's directory {agent.dir!r}")
    declared = set(agent.state_dirs)
    discover = "workspace" in declared
    for d in m.state_dirs:
        if d not in declared and not (discover and _DISCOVERED_DIR_RE.match(d)):
            raise ManifestError(source, f"stateDirs entry {d!r} is not a state dir of the {agent.name} agent")
    for d in m.backed_up_dirs:
        if d not in m.state_dirs:
            raise ManifestError(source, f"backedUpDirs entry {d!r} is not listed in stateDirs")
    if len(set(m.backed_up_dirs)) != len(m.backed_up_dirs):
        raise ManifestError(source, "backedUpDirs has duplicates")
    files_declared = {(f.path, f.strategy) for f in agent.state_files}
    for sf in m.state_files:
        if (sf.path, sf.strategy) not in files_declared:
            raise ManifestError(source, f"stateFiles entry {sf.path!r} ({sf.strategy}) is not a state file of the {agent.name} agent")
    dirs = set(m.backed_up_dirs)
    state_files = {sf.path for sf in m.state_files}
    state_parents = {"/".join(p.split("/")[:i]) for p in state_files for i in range(1, p.count("/") + 1)}

    def under_dir(path: str) -> bool:
        return path.split("/", 1)[0] in dirs

    for f in m.files:
        if not under_dir(f.path) and f.path not in state_files:
            raise ManifestError(source, f"file {f.path!r} lies under none of the backed-up dirs or state files")
    for d in m.dirs:
        if not under_dir(d.path) and d.path not in state_parents:
            raise ManifestError(source, f"directory {d.path!r} lies under none of the backed-up dirs")
    for link in m.symlinks:
        if not under_dir(link.path):
            raise ManifestError(source, f"symlink {link.path!r} lies under none of the backed-up dirs")
    listed = {f.path for f in m.files}
    for sf in m.state_files:
        if sf.path not in listed:
            raise ManifestError(source, f"stateFiles entry {sf.path!r} has no file record")


def _check_home_scope(m: Manifest, agent: Any, source: object) -> None:
    """A whole-home manifest (store/home_scope.py): `dir` is the agent's home, it names no
    state dirs or files, it excludes only what the agent declares (excluding more would leave
    target files unrestored and unchecked), and no record lies under an excluded path."""
    if m.dir != agent.home_dir:
        raise ManifestError(source, f"dir {m.dir!r} is not the {agent.name} agent's home {agent.home_dir!r}")
    if m.state_dirs or m.state_files:
        raise ManifestError(source, "a whole-home backup lists no stateDirs or stateFiles")
    extra = sorted(set(m.excludes) - set(agent.home_excludes))
    if extra:
        raise ManifestError(source, f"excludes {extra[0]!r}, which the {agent.name} agent does not declare")
    top_dirs = {d.path for d in m.dirs if "/" not in d.path}
    for d in m.backed_up_dirs:
        if d not in top_dirs:
            raise ManifestError(source, f"backedUpDirs entry {d!r} has no directory record")
    for r in cast("list[Record]", [*m.files, *m.dirs, *m.symlinks]):
        if any(r.path == e or r.path.startswith(e + "/") for e in m.excludes):
            raise ManifestError(source, f"{r.path!r} lies under the excluded path it should not hold")


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest file's bytes: 2-space pretty JSON in NemoClaw's key order, exactly what
    `atomic.dump_json` writes (`json.dumps(indent=2)`), made by `_pretty_json`."""
    doc = manifest_to_dict(manifest)
    text = _pretty_json(doc)
    return (text + "\n").encode() if text is not None else atomic.dump_json(doc)


_LEAF = (str, int, bool, type(None))
_leaf_encoders: dict[str, Any] = {}


def _leaf_encoder(item_separator: str) -> Any:
    """The standard library's C encoder (what `json.dumps` uses without an indent) with this
    item separator, or None where it is not built (then the loop below does the record)."""
    from json.encoder import c_make_encoder  # type: ignore[attr-defined]

    if c_make_encoder is None:
        return None
    return c_make_encoder(None, None, _encode_str, None, ": ", item_separator, False, False, True)


def _records(items: list[Any], pad: str) -> str | None:
    """A list of records (non-empty dicts of plain values: the manifest's files, dirs and
    links) as `json.dumps(indent=2)` lays it out at indent `pad`, in one call of the C encoder:
    it separates items with `,\0` (a NUL inside a string is always escaped, so the marker
    occurs nowhere else), and a record boundary is the only place `},\0{` can occur (a record
    holds no dict). None if the list is not all such records."""
    enc = _leaf_encoders.get("\0")
    if enc is None:
        enc = _leaf_encoders["\0"] = _leaf_encoder(",\0")
    if enc is None:
        return None
    for r in items:
        if type(r) is not dict or not r:
            return None
        for k, v in r.items():
            if type(k) is not str or type(v) not in _LEAF:
                return None
    p2, p3 = pad + "  ", pad + "    "
    body = "".join(enc(items, 0))[2:-2]
    body = body.replace("},\0{", "\x01").replace(",\0", "," + p3).replace("\x01", p2 + "}," + p2 + "{" + p3)
    return "[" + p2 + "{" + p3 + body + p2 + "}" + pad + "]"


def _pretty_json(doc: Any) -> str | None:
    """`json.dumps(doc, indent=2, ensure_ascii=False)`, byte for byte, for what a manifest holds
    (dicts with string keys, lists, strings, ints, bools, None), or None for anything else.
    With an indent the standard library encodes in Python, value by value through generators
    (2 s for 20,000 file records on a loaded 2-core VM, against 0.08 s without one); this walks
    the containers and hands each record (a dict of plain values) to the C encoder whole, its
    item separator a newline and the indent of its depth (strings never hold a raw newline)."""
    out: list[str] = []
    enc = _encode_str

    def emit(o: Any, pad: str) -> bool:
        if isinstance(o, str):
            out.append(enc(o))
        elif o is None:
            out.append("null")
        elif o is True:
            out.append("true")
        elif o is False:
            out.append("false")
        elif type(o) is int:
            out.append(int.__repr__(o))
        elif isinstance(o, dict):
            if not o:
                out.append("{}")
                return True
            inner = pad + "  "
            if all(type(v) in _LEAF for v in o.values()) and all(type(k) is str for k in o):
                # a record: the C encoder, told to put each item on its own line at this depth
                enc_ = _leaf_encoders.get(inner)
                if enc_ is None:
                    enc_ = _leaf_encoders[inner] = _leaf_encoder("," + inner)
                if enc_ is not None:
                    out.append("{" + inner + "".join(enc_(o, 0))[1:-1] + pad + "}")
                    return True
            sep = "{" + inner
            for k, v in o.items():
                if not isinstance(k, str):
                    return False
                out.append(sep)
                out.append(enc(k))
                out.append(": ")
                if not emit(v, inner):
                    return False
                sep = "," + inner
            out.append(pad + "}")
        elif isinstance(o, list):
            if not o:
                out.append("[]")
                return True
            inner = pad + "  "
            records = _records(o, pad)
            if records is not None:
                out.append(records)
                return True
            sep = "[" + inner
            for v in o:
                out.append(sep)
                if not emit(v, inner):
                    return False
                sep = "," + inner
            out.append(pad + "]")
        else:
            return False
        return True

    return "".join(out) if emit(doc, "\n") else None


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write `<directory>/rebuild-manifest.json` atomically, mode 0600, 2-space pretty JSON."""
    path = Path(directory) / MANIFEST_NAME
    atomic.write_file_atomic(path, manifest_bytes(manifest), mode=0o600)
    return path


def load_manifest(path: Path) -> Manifest:
    """Load a manifest file (or `<dir>/rebuild-manifest.json` if given a directory), strictly."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        path = path / MANIFEST_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ManifestError(path, "manifest file is missing") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ManifestError(path, "manifest is a symbolic link (never followed)") from None
        raise ManifestError(path, f"cannot read manifest ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ManifestError(path, "manifest is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read()
    except OSError as exc:
        raise ManifestError(path, f"cannot read manifest ({exc.strerror})") from None
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(path, f"not valid JSON ({exc})") from None
    return manifest_from_dict(data, path)


# --- timestamps -------------------------------------------------------------------------------


def new_timestamp(now: datetime | None = None) -> str:
    """`new Date().toISOString().replace(/[:.]/g, "-")`: e.g. `2026-05-28T10-09-17-605Z` (UTC)."""
    now = datetime.now(timezone.utc) if now is None else now.astimezone(timezone.utc)
    return now.strftime("%Y-%m-%dT%H-%M-%S-") + f"{now.microsecond // 1000:03d}Z"


def parse_timestamp(ts: str) -> datetime | None:
    """The UTC time of a backup timestamp, or None if it is not in NemoClaw's format."""
    m = _TIMESTAMP_RE.match(ts)
    if not m:
        return None
    try:
        return datetime.strptime(f"{m[1]}T{m[2]}:{m[3]}:{m[4]}.{m[5]}", "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=timezone.utc
        )
    except ValueError:
        return None


# --- verification -----------------------------------------------------------------------------


@attrs.frozen
class Mismatch:
    """The first difference between a backup on disk (or a restored tree) and its manifest."""

    path: str
    kind: str  # missing | extra | size | sha256 | type | symlink | mode | rejected
    expected: str | None = None
    actual: str | None = None

    def __str__(self) -> str:
        detail = {
            "missing": "is missing",
            "extra": "is not in the manifest",
            "size": f"has size {self.actual}, manifest says {self.expected}",
            "sha256": f"has SHA-256 {self.actual}, manifest says {self.expected}",
            "type": f"is a {self.actual}, manifest says {self.expected}",
            "symlink": f"points to {self.actual}, manifest says {self.expected}",
            "mode": f"has mode {self.actual}, manifest says {self.expected}",
            "rejected": f"was refused: {self.actual}",
            "unreadable": f"cannot be read on this host ({self.actual}): the backup is damaged",
        }.get(self.kind, self.kind)
        return f"{short_path(self.path)} {detail}"


def verify(
    backup_dir: Path,
    manifest: Manifest,
    sample_pct: float | None = None,
    *,
    rng: random.Random | None = None,
    hash_files: bool = True,
) -> Mismatch | None:
    """Compare a backup directory with its manifest; return the first mismatch or None.

    Always checks that every listed file exists with its size, every listed symlink with its
    target, and that no unlisted file or symlink exists. Hashes every file, or only a random
    `sample_pct` percent of them (at least one) when given, or none with `hash_files=False`
    (then only presence, types and sizes were checked: never call that "verified"). An entry
    the host cannot read (e.g. a path past PATH_MAX, committed by an older release) is a
    mismatch of kind `unreadable`, never an exception.
    """
    root = Path(backup_dir)
    try:
        return _verify(root, manifest, sample_pct, rng, hash_files)
    except _Unreadable as exc:
        return Mismatch(exc.path, "unreadable", None, exc.why)


class _Unreadable(Exception):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(path)
        self.path, self.why = path, why


def _rel_of(root: Path, filename: object) -> str:
    text = os.fsdecode(filename) if isinstance(filename, (str, bytes)) else str(filename or "")
    rel = os.path.relpath(text, root) if text.startswith(str(root)) else text
    return rel


def _verify(root: Path, manifest: Manifest, sample_pct: float | None, rng: random.Random | None,
            hash_files: bool) -> Mismatch | None:
    try:
        return _verify_tree(root, manifest, sample_pct, rng, hash_files)
    except OSError as exc:
        raise _Unreadable(_rel_of(root, exc.filename), exc.strerror or str(exc)) from None


def _verify_tree(root: Path, manifest: Manifest, sample_pct: float | None, rng: random.Random | None,
                 hash_files: bool) -> Mismatch | None:
    def walk_error(exc: OSError) -> None:
        raise exc

    on_disk: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=walk_error):
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel != MANIFEST_NAME:
                on_disk[rel] = os.lstat(os.path.join(dirpath, name))
    for rel in [*manifest.backed_up_dirs, *(d.path for d in manifest.dirs)]:
        try:
            st = os.lstat(root / rel)
        except FileNotFoundError:
            return Mismatch(rel, "missing")
        if not stat.S_ISDIR(st.st_mode):
            return Mismatch(rel, "type", "directory", "symlink" if stat.S_ISLNK(st.st_mode) else "file")
    listed = {f.path for f in manifest.files} | {s.path for s in manifest.symlinks}
    for rel in sorted(on_disk):
        if rel not in listed:
            return Mismatch(rel, "extra")
    for link in manifest.symlinks:
        st = on_disk.get(link.path)
        if st is None:
            return Mismatch(link.path, "missing")
        if not stat.S_ISLNK(st.st_mode):
            return Mismatch(link.path, "type", "symlink", "file")
        target = os.readlink(root / link.path)
        if target != link.target:
            return Mismatch(link.path, "symlink", link.target, target)
    for f in manifest.files:
        st = on_disk.get(f.path)
        if st is None:
            return Mismatch(f.path, "missing")
        if not stat.S_ISREG(st.st_mode):
            return Mismatch(f.path, "type", "file", "symlink" if stat.S_ISLNK(st.st_mode) else "special file")
        if st.st_size != f.size:
            return Mismatch(f.path, "size", str(f.size), str(st.st_size))
    to_hash = list(manifest.files) if hash_files else []
    if sample_pct is not None and to_hash:
        k = max(1, min(len(to_hash), round(len(to_hash) * sample_pct / 100)))
        to_hash = (rng or random.Random()).sample(to_hash, k)
    for f in to_hash:
        digest = _sha256_file(root / f.path)
        if digest != f.sha256:
            return Mismatch(f.path, "sha256", f.sha256, digest)
    return None


def diff_records(
    expected_files: list[FileRecord],
    expected_links: list[LinkRecord],
    actual_files: list[FileRecord],
    actual_links: list[LinkRecord],
    *,
    check_modes: bool = False,
) -> Mismatch | None:
    """First difference between two sets of records (e.g. a manifest and a re-read sandbox)."""
    want_f = {f.path: f for f in expected_files}
    want_l = {s.path: s for s in expected_links}
    got_f = {f.path: f for f in actual_files}
    got_l = {s.path: s for s in actual_links}
    for path in sorted(set(got_f) | set(got_l)):
        if path not in want_f and path not in want_l:
            return Mismatch(path, "extra")
    for path, w in want_l.items():
        if path in got_f:
            return Mismatch(path, "type", "symlink", "file")
        g = got_l.get(path)
        if g is None:
            return Mismatch(path, "missing")
        if g.target != w.target:
            return Mismatch(path, "symlink", w.target, g.target)
    for path, w in want_f.items():
        if path in got_l:
            return Mismatch(path, "type", "file", "symlink")
        g = got_f.get(path)
        if g is None:
            return Mismatch(path, "missing")
        if g.size != w.size:
            return Mismatch(path, "size", str(w.size), str(g.size))
        if g.sha256 != w.sha256:
            return Mismatch(path, "sha256", w.sha256, g.sha256)
        if check_modes and g.mode != w.mode:
            return Mismatch(path, "mode", oct(w.mode), oct(g.mode))
    return None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()
