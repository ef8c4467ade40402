"""What a failed `openshell` call says about its gRPC cause (openshell-behaviour §6).

The CLI prints a failed RPC as `Error:   × status: <Code>, message: "<text>", details: [], ...`
(tonic < 0.14) or `code: '<description>', message: "<text>"` (OpenShell >= 0.0.61, tonic 0.14);
an h2-level drop is `status: Internal|Unknown, message: "h2 protocol error: ..."`. Which of
those are worth one retry, and the one-line cause to show the user and the run log, are pure
functions of that text: docs/reference/grpc-errors.md.
"""

from __future__ import annotations

import re

from .cli import CaptureResult, strip_ansi

__all__ = ["grpc_cause", "is_transient_failure", "last_line"]

_CAUSE = re.compile(r"(?:status: \w+|code: '[^']*'), message: \"(?:[^\"\\]|\\.)*\"")
_CODE = re.compile(r"status: (\w+)|code: '([^']*)'")
_TRANSIENT_CODES = {"Unavailable", "DeadlineExceeded", "ResourceExhausted", "Aborted"}
_TRANSIENT_DESCRIPTIONS = (
    "The service is currently unavailable",
    "Deadline expired before operation could complete",
    "Some resource has been exhausted",
    "The operation was aborted",
)
_H2 = re.compile(r"h2 protocol error|connection reset|broken pipe|transport error", re.I)
_SCHEMA = re.compile(r"failed to decode Protobuf message|invalid wire type", re.I)


def _unwrap(text: str) -> str:
    """Undo miette's wrapping of a long error (`\n  │ ` continuation lines) into one line."""
    return re.sub(r"\s+", " ", text.replace("│", " "))


def grpc_cause(output: str) -> str | None:
    """`status: Unavailable, message: "..."` (the part a user can act on), or None when the
    output carries no gRPC status (then `last_line` is what there is to show)."""
    m = _CAUSE.search(_unwrap(strip_ansi(output)))
    return m.group(0) if m else None


def last_line(output: str) -> str | None:
    """The last non-empty line of a CLI output, for the run log when there is no gRPC status."""
    lines = [ln.strip(" ×│╰─▶") for ln in strip_ansi(output).splitlines() if ln.strip(" ×│╰─▶")]
    return lines[-1][:300] if lines else None


def is_transient_failure(result: CaptureResult) -> bool:
    """A failure worth one more try: gRPC Unavailable / DeadlineExceeded / ResourceExhausted /
    Aborted, an h2 drop, or a timed-out call. Never a schema mismatch."""
    if result.status == 0:
        return False
    clean = _unwrap(strip_ansi(result.output))
    if _SCHEMA.search(clean):
        return False
    if result.timed_out or _H2.search(clean):
        return True
    for m in _CODE.finditer(clean):
        code, description = m.group(1), m.group(2)
        if code in _TRANSIENT_CODES or (description and description.startswith(_TRANSIENT_DESCRIPTIONS)):
            return True
    return False
