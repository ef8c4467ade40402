"""NemoClaw's sandbox registry as NemoClaw keeps it (docs/reference/nemoclaw-registry.md).

One file per gateway port: `~/.nemoclaw/sandboxes.json` for the default port,
`~/.nemoclaw/gateways/<port>/sandboxes.json` for the others (NemoClaw looks a sandbox up across
all of them). Every entry remembers the file it came from and its gateway, and is written back
to that file only.

Read strictly: a file that is not the registry's shape is an error naming the file (exit 2),
never a traceback and never "no sandboxes". A row we cannot act on (its `name` differs from its
key) is kept as an entry with a `problem`, so the command fails for that sandbox alone and
exits non-zero; it is never skipped as "not running".

Written only by `update_row`: the fields we own change, every other field and top-level key
(known or not) is kept as it was read, atomically (temp file, fsync, rename). NemoClaw names no
lock for the registry and writes it itself, so a write is a compare-and-swap on the file's
content, retried when another program changed the file between our read and our write: both
changes survive.

The identity fingerprint (`lifecycleLiveIdentityFingerprint`, the lower-case hex SHA-256 of the
OpenShell sandbox id) binds a row to one live sandbox: `check_identity` refuses a sandbox whose
live id does not match it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..kernel.atomic import dump_json, write_file_atomic
from ..kernel.errors import StepError

REGISTRY_FILE = "sandboxes.json"
FINGERPRINT = "lifecycleLiveIdentityFingerprint"
PINNED_FIELD = "fromImage"
"""The row field we read a sandbox's recorded image reference from (onboarding's
`--from-image`); the container's image is the other place (docs/reference/nemoclaw-registry.md)."""
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_PINNED = re.compile(r"^(?P<repo>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")
CAS_ATTEMPTS = 20


class RegistryError(StepError):
    """The registry file is unreadable or not the registry's shape (bad input: exit 2)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"Cannot read the sandbox registry {path}: {problem}", kind="registry", exit_code=2)


class RegistryBusy(StepError):
    """Another program kept rewriting the registry file while we tried to write our change."""

    def __init__(self, path: Path, attempts: int) -> None:
        super().__init__(f"The sandbox registry {path} was changed by another program {attempts} times while we "
                         "tried to write it; nothing of ours was written, rerun the command.", kind="registry")


class IdentityMismatch(StepError):
    """The live sandbox is not the one the registry row describes."""

    def __init__(self, name: str, recorded: str, live_id: str) -> None:
        super().__init__(
            f"Refusing to touch sandbox '{name}': its registry row belongs to another sandbox (identity "
            f"fingerprint {recorded}) than the live one (id {live_id}, fingerprint {fingerprint_of(live_id)}); "
            "nothing of it was changed. Check which sandbox this is with `openshell sandbox get "
            f"{name}` and `nemoclaw {name} status`.", kind="identity")
        self.name, self.recorded, self.live_id = name, recorded, live_id


@attrs.frozen
class SandboxEntry:
    name: str
    agent: str
    agent_version: str | None
    policies: tuple[str, ...] = ()
    key: str | None = None  # the entry's key in "sandboxes" (equal to `name` unless `problem` says otherwise)
    registry: str | None = None  # the file the entry was read from, and is written back to
    gateway_port: int | None = None  # None: the default port's registry
    gateway_name: str | None = None  # the row's `gatewayName`, when recorded
    fingerprint: str | None = None  # `lifecycleLiveIdentityFingerprint`, when recorded
    image: str | None = None  # the recorded image reference (`fromImage`), when recorded
    stopped: bool = False  # the row's `stopped`: stopped on purpose through NemoClaw
    problem: str | None = None  # why this row cannot be acted on (it is an error for this sandbox)

    @property
    def where(self) -> str:
        """The entry as a message names it: its key and its file."""
        return f"{self.key if self.key is not None else self.name!r} in {self.registry or REGISTRY_FILE}"


def fingerprint_of(sandbox_id: str) -> str:
    """The identity fingerprint NemoClaw records: lower-case hex SHA-256 of the OpenShell id."""
    return hashlib.sha256(sandbox_id.encode("utf-8")).hexdigest()


def check_identity(entry: SandboxEntry, live_id: str | None) -> None:
    """Raise IdentityMismatch when the entry records a fingerprint and the live sandbox's id
    (`openshell sandbox get`'s `Id:`) does not hash to it. No fingerprint: nothing to check.
    A recorded fingerprint and no live id to check it against is a refusal too."""
    if entry.fingerprint is None:
        return
    if live_id is None:
        raise StepError(f"Refusing to touch sandbox '{entry.name}': its registry row records an identity "
                        "fingerprint, and OpenShell did not say the live sandbox's id; nothing of it was changed.",
                        kind="identity")
    if fingerprint_of(live_id) != entry.fingerprint:
        raise IdentityMismatch(entry.name, entry.fingerprint, live_id)


def pinned_digest(image: str | None) -> tuple[str, str] | None:
    """(repository, `sha256:<digest>`) when `image` is a pinned reference `repository@sha256:<digest>`."""
    m = _PINNED.match(image or "")
    return (m["repo"], m["digest"]) if m else None


def registry_files(nemoclaw_dir: Path) -> list[tuple[Path, int | None]]:
    """Every registry root that exists: the default port's, then each port's in port order."""
    roots: list[tuple[Path, int | None]] = [(nemoclaw_dir / REGISTRY_FILE, None)]
    gateways = nemoclaw_dir / "gateways"
    try:
        ports = sorted(int(d.name) for d in gateways.iterdir() if d.name.isdigit() and (d / REGISTRY_FILE).is_file())
    except (FileNotFoundError, NotADirectoryError):
        ports = []
    except OSError as exc:
        raise RegistryError(gateways, str(exc)) from None
    roots += [(gateways / str(p) / REGISTRY_FILE, p) for p in ports]
    return roots


def read_all(nemoclaw_dir: Path) -> list[SandboxEntry]:
    """The sandboxes of every registry root, each root in its file's order."""
    entries: list[SandboxEntry] = []
    for path, port in registry_files(nemoclaw_dir):
        entries += read_registry(path, port)
    return entries


def duplicate_names(entries: list[SandboxEntry]) -> dict[str, list[str]]:
    """Names registered by more than one entry (in one file or in several) -> where each is.
    Such a sandbox is ambiguous (which agent, which gateway?), so it is refused alone, never guessed."""
    where: dict[str, list[str]] = {}
    for e in entries:
        where.setdefault(e.name, []).append(e.where)
    return {name: ws for name, ws in where.items() if len(ws) > 1}


def _load(path: Path, text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise RegistryError(path, "expected a JSON object with a \"sandboxes\" object")
    sandboxes = doc.get("sandboxes", {})
    if not isinstance(sandboxes, dict):
        raise RegistryError(path, "\"sandboxes\" must be an object keyed by sandbox name")
    return doc


def read_registry(path: Path, port: int | None = None) -> list[SandboxEntry]:
    """Registered sandboxes of one file in registry (insertion) order; a missing file is empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(path, str(exc)) from None
    doc = _load(path, text)
    return [_entry(path, port, key, raw) for key, raw in doc.get("sandboxes", {}).items()]


def _entry(path: Path, port: int | None, key: str, raw: Any) -> SandboxEntry:
    if not isinstance(raw, dict):
        raise RegistryError(path, f"entry {key!r} must be an object")
    name = raw.get("name", key)
    agent = raw.get("agent") or "openclaw"
    version = raw.get("agentVersion")
    policies = raw.get("policies") or []
    if not isinstance(name, str) or not name:
        raise RegistryError(path, f"entry {key!r} has no valid \"name\"")
    if not isinstance(agent, str):
        raise RegistryError(path, f"entry {key!r}: \"agent\" must be a string")
    if version is not None and not isinstance(version, str):
        raise RegistryError(path, f"entry {key!r}: \"agentVersion\" must be a string or null")
    if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
        raise RegistryError(path, f"entry {key!r}: \"policies\" must be a list of strings")
    problem = None
    if name != key:
        problem = (f"its registry entry {key!r} in {path} names sandbox {name!r}; make the key and its \"name\" "
                   "the same (the sandbox's name in OpenShell) and rerun")
    fingerprint = raw.get(FINGERPRINT)
    if fingerprint is not None and not (isinstance(fingerprint, str) and _SHA256_HEX.match(fingerprint)):
        problem = problem or (f"its registry entry {key!r} in {path} has a \"{FINGERPRINT}\" that is not a "
                              "lower-case hex SHA-256; fix or remove it and rerun")
        fingerprint = None
    gw_port = raw.get("gatewayPort")
    gw_name = raw.get("gatewayName")
    image = raw.get(PINNED_FIELD)
    return SandboxEntry(
        name=key, agent=agent, agent_version=version, policies=tuple(policies), key=key, registry=str(path),
        gateway_port=gw_port if isinstance(gw_port, int) and not isinstance(gw_port, bool) else port,
        gateway_name=gw_name if isinstance(gw_name, str) else None,
        fingerprint=fingerprint, image=image if isinstance(image, str) and image else None,
        stopped=raw.get("stopped") is True, problem=problem,
    )


class _Changed(Exception):
    """The file's content changed between our read and our write (compare-and-swap lost)."""


# Called between the read and the write of `update_row` (a test seam: another program's write
# lands exactly there). None in normal runs.
between_read_and_write: Callable[[Path], None] | None = None


def update_row(path: Path, key: str, changes: Mapping[str, Any]) -> bool:
    """Set `changes` in row `key` of registry file `path`, keeping every other field and key as
    read, atomically; retried while another program changes the file under us. Returns whether
    the file was written (False: the row already had these values)."""
    return _compare_and_swap(path, lambda: _swap(path, key, changes))


def _compare_and_swap(path: Path, attempt_once: Callable[[], bool]) -> bool:
    """`attempt_once` again while another program changes `path` between our read and our write."""
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random

    try:
        for attempt in Retrying(retry=retry_if_exception_type(_Changed), stop=stop_after_attempt(CAS_ATTEMPTS),
                                wait=wait_random(0.005, 0.05)):
            with attempt:
                return attempt_once()
    except RetryError:
        raise RegistryBusy(path, CAS_ATTEMPTS) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _swap(path: Path, key: str, changes: Mapping[str, Any]) -> bool:
    try:
        before = path.read_bytes()
    except FileNotFoundError:
        raise RegistryError(path, f"sandbox {key!r} is not registered (the file is gone)") from None
    except OSError as exc:
        raise RegistryError(path, str(exc)) from None
    try:
        doc = _load(path, before.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RegistryError(path, str(exc)) from None
    row = doc.get("sandboxes", {}).get(key)
    if not isinstance(row, dict):
        raise RegistryError(path, f"sandbox {key!r} is not registered")
    if all(k in row and row[k] == v for k, v in changes.items()):
        return False
    row.update(changes)
    if between_read_and_write is not None:
        between_read_and_write(path)
    mode = os.stat(path).st_mode & 0o777
    # Compare-and-swap: the new content replaces the file only if the file still holds what we
    # read. The check and the rename are not one atomic operation (no lock is shared with
    # NemoClaw), so the window is what lies between two system calls, not a whole read-modify-write.
    if path.read_bytes() != before:
        raise _Changed()
    write_file_atomic(path, dump_json(doc), mode=mode or 0o600)
    return True


def recorded_row(entry: SandboxEntry, nemoclaw_dir: Path) -> tuple[str, dict[str, Any]] | None:
    """The entry's row as its file holds it now, and that file relative to `nemoclaw_dir`
    (`sandboxes.json` or `gateways/<port>/sandboxes.json`): what a backup records so that a host
    that lost its registry can register the sandbox again (`register_row`). None when the row
    is gone or its file is not one of the registry roots."""
    path = _file_of(entry, nemoclaw_dir)
    try:
        rel = path.relative_to(nemoclaw_dir).as_posix()
        doc = _load(path, path.read_text(encoding="utf-8"))
    except (ValueError, OSError, UnicodeDecodeError, RegistryError):
        return None
    row = doc.get("sandboxes", {}).get(entry.key or entry.name)
    if not isinstance(row, dict) or not re.fullmatch(r"sandboxes\.json|gateways/[0-9]{1,5}/sandboxes\.json", rel):
        return None
    return rel, row


def entry_from_row(nemoclaw_dir: Path, rel_file: str, key: str, row: Any) -> SandboxEntry:
    """The entry a recorded row (`recorded_row`) would be once registered in `rel_file`."""
    m = re.fullmatch(r"gateways/([0-9]{1,5})/sandboxes\.json", rel_file)
    return _entry(nemoclaw_dir / rel_file, int(m.group(1)) if m else None, key, row)


def register_row(nemoclaw_dir: Path, rel_file: str, key: str, row: dict[str, Any]) -> bool:
    """Add row `key` to registry file `rel_file` of `nemoclaw_dir` (created when missing, 0600 in
    a 0700 directory), keeping every other row and key; compare-and-swap like `update_row`.
    Returns False, writing nothing, when the file already has a row `key`."""
    path = nemoclaw_dir / rel_file
    return _compare_and_swap(path, lambda: _insert(path, key, row))


def _insert(path: Path, key: str, row: dict[str, Any]) -> bool:
    try:
        before: bytes | None = path.read_bytes()
    except FileNotFoundError:
        before = None
    except OSError as exc:
        raise RegistryError(path, str(exc)) from None
    if before is None:
        doc: dict[str, Any] = {"sandboxes": {}}
        mode = 0o600
    else:
        try:
            doc = _load(path, before.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise RegistryError(path, str(exc)) from None
        mode = (os.stat(path).st_mode & 0o777) or 0o600
    sandboxes = doc.setdefault("sandboxes", {})
    if key in sandboxes:
        return False
    sandboxes[key] = row
    if between_read_and_write is not None:
        between_read_and_write(path)
    try:
        now: bytes | None = path.read_bytes()
    except FileNotFoundError:
        now = None
    if now != before:
        raise _Changed()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_file_atomic(path, dump_json(doc), mode=mode)
    return True


def update_agent_version(entry: SandboxEntry, version: str, *, nemoclaw_dir: Path) -> bool:
    """Set the entry's `agentVersion` in the file it came from."""
    return update_row(_file_of(entry, nemoclaw_dir), entry.key or entry.name, {"agentVersion": version})


def follow_identity(entry: SandboxEntry, live_id: str, *, nemoclaw_dir: Path) -> bool:
    """After a recreate: the row's identity fingerprint becomes the new sandbox's (only when the
    row records one; a row without it is left without it)."""
    if entry.fingerprint is None:
        return False
    return update_row(_file_of(entry, nemoclaw_dir), entry.key or entry.name, {FINGERPRINT: fingerprint_of(live_id)})


def _file_of(entry: SandboxEntry, nemoclaw_dir: Path) -> Path:
    return Path(entry.registry) if entry.registry else nemoclaw_dir / REGISTRY_FILE
