"""Parsing `openshell sandbox list`
(docs/reference/gateway-recovery.md, "Listing lines"; docs/reference/openshell-versions.md).

Which sandboxes are *running* decides what gets backed up, so a misparse silently skips data
(NemoClaw #3399). The table parser mirrors upstream exactly; `-o json` (CLI ≥ 0.0.44) is used
when available because it names the phase field instead of guessing a column.
"""

from __future__ import annotations

import json
import re

import attrs

from .cli import strip_ansi, version_gte
from .rpc_errors import is_protobuf_mismatch

JSON_OUTPUT_SINCE = "0.0.44"
PHASES = frozenset({"Ready", "Running", "NotReady", "Provisioning", "Error"})
READY_PHASES = frozenset({"Ready", "Running"})
ALL_PHASES = PHASES | {"Unspecified", "Deleting", "Unknown"}
LISTED_PHASES = ALL_PHASES | {"Stopping", "Stopped", "Starting", "Completed"}
"""Every phase a listing may print; 0.1.x adds the last four (docs/reference/openshell-versions.md)."""
UNKNOWN_PHASE = "unknown"
"""What a phase we do not know becomes: never guessed to be stopped (or running)."""
_ERROR_LINE = re.compile(r"^Error:", re.I)


def list_args(cli_version: str | None) -> list[str]:
    """`sandbox list`, with `-o json` when the installed CLI has it."""
    if cli_version and version_gte(cli_version, JSON_OUTPUT_SINCE):
        return ["sandbox", "list", "-o", "json"]
    return ["sandbox", "list"]


def _rows(output: str) -> list[list[str]]:
    rows = []
    for raw in strip_ansi(output).splitlines():
        line = raw.strip()
        if not line or line in ("No sandboxes found", "No sandboxes found."):
            continue
        if _ERROR_LINE.search(line) or is_protobuf_mismatch(line):
            continue
        cols = line.split()
        if cols[0] == "NAME":
            continue
        rows.append(cols)
    return rows


def _phase(cols: list[str]) -> str | None:
    if len(cols) <= 3 and len(cols) > 1 and cols[1] in PHASES:
        return cols[1]
    return cols[-1] if cols[-1] in PHASES else None


def parse_live_sandbox_names(output: str) -> list[str]:
    """Every listed sandbox, whatever its phase (upstream parseLiveSandboxNames)."""
    return [cols[0] for cols in _rows(output)]


def parse_ready_sandbox_names(output: str) -> list[str]:
    """Sandboxes whose phase column is Ready or Running (upstream parseReadySandboxNames)."""
    return [cols[0] for cols in _rows(output) if _phase(cols) in READY_PHASES]


def table_phases(output: str) -> list[str]:
    """The phase of each table row as printed (incl. `Unspecified`), for the schema check."""
    out = []
    for cols in _rows(output):
        last = cols[-1]
        out.append(last if last in LISTED_PHASES else (cols[1] if len(cols) > 1 and cols[1] in LISTED_PHASES else UNKNOWN_PHASE))
    return out


def known_phase(phase: object) -> str:
    """The listed phase, or `unknown` for anything else (a newer release's value, garbage)."""
    return phase if isinstance(phase, str) and phase in LISTED_PHASES else UNKNOWN_PHASE


@attrs.frozen
class SandboxEntry:
    name: str
    phase: str
    id: str | None = None  # the JSON listing has it; the table does not
    workspace: str | None = None  # `-o json` from 0.0.88


@attrs.frozen
class SandboxListing:
    """A parsed listing: every entry in order, plus the names upstream derives from it."""

    entries: tuple[SandboxEntry, ...]
    live: tuple[str, ...]
    ready: tuple[str, ...]
    format: str  # "json" | "table"

    @property
    def phases(self) -> list[str]:
        return [e.phase for e in self.entries]

    def as_data(self) -> dict:
        return {
            "live": list(self.live),
            "ready": list(self.ready),
            "phases": {e.name: e.phase for e in self.entries},
            "ids": {e.name: e.id for e in self.entries if e.id},
            "workspaces": {e.name: e.workspace for e in self.entries if e.workspace},
            "format": self.format,
        }


def parse_sandbox_json(stdout: str) -> SandboxListing | None:
    """The `-o json` array; None when stdout isn't that shape (caller falls back to the table)."""
    try:
        doc = json.loads(strip_ansi(stdout).strip() or "null")
    except ValueError:
        return None
    if not isinstance(doc, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in doc):
        return None
    entries = tuple(
        SandboxEntry(
            i["name"],
            known_phase(i.get("phase")),
            i["id"] if isinstance(i.get("id"), str) and i["id"] else None,
            i["workspace"] if isinstance(i.get("workspace"), str) and i["workspace"] else None,
        )
        for i in doc
    )
    return SandboxListing(
        entries=entries,
        live=tuple(e.name for e in entries),
        ready=tuple(e.name for e in entries if e.phase in READY_PHASES),
        format="json",
    )


def parse_sandbox_table(output: str) -> SandboxListing:
    rows = _rows(output)
    phases = table_phases(output)
    entries = tuple(SandboxEntry(cols[0], ph) for cols, ph in zip(rows, phases))
    return SandboxListing(
        entries=entries,
        live=tuple(parse_live_sandbox_names(output)),
        ready=tuple(parse_ready_sandbox_names(output)),
        format="table",
    )


def parse_listing(stdout: str, output: str) -> SandboxListing:
    """JSON when stdout is a JSON array, else upstream's table parse of the full output."""
    return parse_sandbox_json(stdout) or parse_sandbox_table(output)
