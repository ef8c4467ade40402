"""NemoClaw's sandbox registry, `~/.nemoclaw/sandboxes.json`
(docs/reference/nemoclaw-commands.md, "The registry").

Read strictly: a file that is not the registry's shape is an error naming the file (exit 2),
never a traceback and never "no sandboxes". Written only by `update_agent_version`, atomically
(temp file, fsync, rename), keeping every field we do not know about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from ..kernel.atomic import dump_json, write_file_atomic
from ..kernel.errors import StepError


class RegistryError(StepError):
    """The registry file is unreadable or not the registry's shape (bad input: exit 2)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"  Cannot read the sandbox registry {path}: {problem}", kind="registry", exit_code=2)


@attrs.frozen
class SandboxEntry:
    name: str
    agent: str
    agent_version: str | None
    policies: tuple[str, ...] = ()
    key: str | None = None  # the entry's key in "sandboxes" (usually equal to `name`)


def duplicate_names(entries: list[SandboxEntry]) -> dict[str, list[str]]:
    """Names registered by more than one entry -> those entries' keys. Such a sandbox is
    ambiguous (which agent, which policies?), so it is refused alone, never guessed."""
    keys: dict[str, list[str]] = {}
    for e in entries:
        keys.setdefault(e.name, []).append(e.key if e.key is not None else e.name)
    return {name: ks for name, ks in keys.items() if len(ks) > 1}


def read_registry(path: Path) -> list[SandboxEntry]:
    """Registered sandboxes in registry (insertion) order; a missing file is an empty registry."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(path, str(exc)) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise RegistryError(path, "expected a JSON object with a \"sandboxes\" object")
    sandboxes = doc.get("sandboxes", {})
    if not isinstance(sandboxes, dict):
        raise RegistryError(path, "\"sandboxes\" must be an object keyed by sandbox name")
    entries = []
    for key, raw in sandboxes.items():
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
        entries.append(SandboxEntry(name=name, agent=agent, agent_version=version, policies=tuple(policies), key=key))
    return entries


def update_agent_version(path: Path, name: str, version: str) -> None:
    """Set `agentVersion` of one sandbox, preserving everything else, atomically."""
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for key, raw in doc.get("sandboxes", {}).items():
        if raw.get("name", key) == name:
            raw["agentVersion"] = version
            break
    else:
        raise RegistryError(path, f"sandbox {name!r} is not registered")
    write_file_atomic(path, dump_json(doc), mode=0o600)
