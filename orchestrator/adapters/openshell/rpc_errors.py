"""What a failed `openshell` call says about its gRPC cause (docs/reference/grpc-errors.md).

The CLI prints a failed RPC as `Error:   × status: <Code>, message: "<text>", details: [], ...`
(tonic < 0.14) or `code: '<description>', message: "<text>"` (OpenShell >= 0.0.61, tonic 0.14);
an h2-level drop is `status: Internal|Unknown, message: "h2 protocol error: ..."`. Which of
those are worth one retry, and the one-line cause to show the user and the run log, are pure
functions of that text: docs/reference/grpc-errors.md.
"""

from __future__ import annotations

import re

from .cli import CaptureResult, strip_ansi

__all__ = ["failure_gist", "grpc_cause", "is_protobuf_mismatch", "is_transient_failure", "last_line"]

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
_PROTOBUF = (
    re.compile(r"invalid wire type", re.I),
    re.compile(r"proto(?:buf)?(?: decode| schema| wire)", re.I),
    re.compile(r"failed to decode Protobuf message", re.I),  # prost's DecodeError, e.g. 0.0.x CLI vs 0.1.x gateway
)
# tonic's rendering of a gRPC status, as `openshell` prints it: `status: Internal, message: "..."`.
_GRPC_STATUS = re.compile(r'status:\s*(\w+),\s*message:\s*"((?:[^"\\]|\\.)*)"', re.S)


def is_protobuf_mismatch(output: str) -> bool:
    """The CLI and the gateway disagree on the protobuf schema (a decode error, not a failure
    a retry or a gateway restart can fix)."""
    clean = strip_ansi(output)
    return any(p.search(clean) for p in _PROTOBUF)


def failure_gist(output: str) -> str:
    """The gist of a failed `openshell` call: the gRPC status and message, else its first line."""
    text = strip_ansi(output)
    m = _GRPC_STATUS.search(text)
    if m:
        message = " ".join(m.group(2).replace('\\"', '"').split())
        return f"{m.group(1)}: {message}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "no output"


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
    if is_protobuf_mismatch(clean):
        return False
    if result.timed_out or _H2.search(clean):
        return True
    for m in _CODE.finditer(clean):
        code, description = m.group(1), m.group(2)
        if code in _TRANSIENT_CODES or (description and description.startswith(_TRANSIENT_DESCRIPTIONS)):
            return True
    return False
