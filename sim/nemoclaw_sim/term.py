"""Terminal text exactly as the Rust crates behind OpenShell print it
(docs/reference/openshell-cli-and-gateway.md).

* owo-colors (no `supports-colors` feature): escapes are emitted unconditionally ("CLI conventions").
* miette 7.6 graphical report, non-TTY: `  × msg`, `  │ more`, `  ├─▶ cause`, `  ╰─▶ last cause`,
  wrapped at (80 - 2) = 78 columns ("CLI conventions").
* clap 4 usage errors: `error: …`, usage line, exit 2.
* tonic 0.12 / 0.14 `Status` Display ("sandbox get", "Version skew").
* tracing-subscriber's default fmt layer, ANSI on unless NO_COLOR is non-empty ("Start-up log").
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
import textwrap
from typing import Iterable, NoReturn

ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
WRAP_WIDTH = 78


def strip_ansi(text: str) -> str:
    return ANSI_RE.sub("", text)


# --- owo-colors --------------------------------------------------------------------------------

def bold(s: str) -> str:
    return f"\x1b[1m{s}\x1b[0m"


def dimmed(s: str) -> str:
    return f"\x1b[2m{s}\x1b[0m"


def _fg(code: int, s: str) -> str:
    return f"\x1b[{code}m{s}\x1b[39m"


def green(s: str) -> str:
    return _fg(32, s)


def red(s: str) -> str:
    return _fg(31, s)


def yellow(s: str) -> str:
    return _fg(33, s)


def cyan(s: str) -> str:
    return _fg(36, s)


def cyan_bold(s: str) -> str:
    """`"X".cyan().bold()` = bold wrapping the colour."""
    return bold(cyan(s))


# --- miette --------------------------------------------------------------------------------------

def _wrap(text: str, first: str, rest: str) -> list[str]:
    lines: list[str] = []
    for i, raw in enumerate(text.split("\n")):
        initial = first if i == 0 else rest
        if not raw.strip():
            lines.append(initial.rstrip())
            continue
        lines.extend(
            textwrap.wrap(raw, width=WRAP_WIDTH, initial_indent=initial, subsequent_indent=rest,
                          break_long_words=True, break_on_hyphens=False)
        )
    return lines


def miette_report(message: str, causes: Iterable[str] = ()) -> str:
    """The text after `Error: ` for a diagnostic with an optional cause chain."""
    causes = list(causes)
    lines = _wrap(message, "  × ", "  │ ")
    for i, cause in enumerate(causes):
        last = i == len(causes) - 1
        lines.extend(_wrap(cause, "  ╰─▶ " if last else "  ├─▶ ", "      " if last else "  │   "))
    return "\n".join(lines) + "\n"


def fail(message: str, causes: Iterable[str] = (), code: int = 1) -> NoReturn:
    """What `fn main() -> miette::Result<()>` does with an error: report on stderr, exit 1."""
    sys.stdout.flush()
    sys.stderr.write("Error: " + miette_report(message, causes))
    sys.stderr.flush()
    raise SystemExit(code)


# --- tonic Status --------------------------------------------------------------------------------

_CODE_DESCRIPTIONS = {
    "Ok": "The operation completed successfully",
    "Cancelled": "The operation was cancelled",
    "Unknown": "Unknown error",
    "InvalidArgument": "Client specified an invalid argument",
    "DeadlineExceeded": "Deadline expired before operation could complete",
    "NotFound": "Some requested entity was not found",
    "AlreadyExists": "Some entity that we attempted to create already exists",
    "PermissionDenied": "The caller does not have permission to execute the specified operation",
    "ResourceExhausted": "Some resource has been exhausted",
    "FailedPrecondition": "The system is not in a state required for the operation's execution",
    "Aborted": "The operation was aborted",
    "OutOfRange": "Operation was attempted past the valid range",
    "Unimplemented": "Operation is not implemented or not supported",
    "Internal": "Internal error",
    "Unavailable": "The service is currently unavailable",
    "DataLoss": "Unrecoverable data loss or corruption",
    "Unauthenticated": "The request does not have valid authentication credentials",
}

GRPC_CODES = list(_CODE_DESCRIPTIONS)


def rust_debug_str(s: str) -> str:
    """`{:?}` of a Rust &str: double quotes with escapes."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def tonic_status(code: str, message: str, headers: dict[str, str] | None = None, *, tonic14: bool = False) -> str:
    """tonic's `Display for Status`: 0.12 prints the whole struct, 0.14 the code description."""
    if tonic14:
        return f"code: '{_CODE_DESCRIPTIONS.get(code, 'Unknown error')}', message: {rust_debug_str(message)}"
    hdrs = ", ".join(f"{rust_debug_str(k)}: {rust_debug_str(v)}" for k, v in (headers or {}).items())
    return (f"status: {code}, message: {rust_debug_str(message)}, details: [], "
            f"metadata: MetadataMap {{ headers: {{{hdrs}}} }}")


# --- clap ----------------------------------------------------------------------------------------

def clap_error(message: str, usage: str, tip: str | None = None) -> NoReturn:
    """clap 4's usage error layout on stderr, exit 2."""
    sys.stdout.flush()
    parts = [f"error: {message}\n"]
    if tip:
        parts.append(f"\n  tip: {tip}\n")
    parts.append(f"\nUsage: {usage}\n\nFor more information, try '--help'.\n")
    sys.stderr.write("".join(parts))
    sys.stderr.flush()
    raise SystemExit(2)


# --- tracing-subscriber fmt --------------------------------------------------------------------

_LEVEL_COLOURS = {"TRACE": 35, "DEBUG": 34, "INFO": 32, "WARN": 33, "ERROR": 31}


def log_line(level: str, target: str, message: str, fields: dict[str, object] | None = None,
             *, ansi: bool = True, now: _dt.datetime | None = None) -> str:
    """One line of `tracing_subscriber::fmt()` output (default format, full timestamp)."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    ts = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}Z"
    lvl = f"{level:>5}"
    fields = fields or {}
    if not ansi:
        body = message + "".join(f" {k}={v}" for k, v in fields.items())
        return f"{ts} {lvl} {target}: {body}"
    f_txt = "".join(f" \x1b[3m{k}\x1b[0m\x1b[2m=\x1b[0m{v}" for k, v in fields.items())
    return (f"\x1b[2m{ts}\x1b[0m \x1b[{_LEVEL_COLOURS[level]}m{lvl}\x1b[0m "
            f"\x1b[2m{target}\x1b[0m\x1b[2m:\x1b[0m {message}{f_txt}")
