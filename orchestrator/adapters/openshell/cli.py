"""Running the installed `openshell` CLI the way NemoClaw does
(docs/reference/nemoclaw-commands.md, "Running `openshell`").

NemoClaw's drift checks compare what the *installed* CLI says with what the gateway serves,
so locating the binary, capturing its output and parsing versions must match upstream exactly:
a probe that reads stderr where upstream reads stdout would see different text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from ...kernel.errors import StepError
from .version import version_text

PROBE_TIMEOUT = 15.0
"""`status`, `gateway info`, `--version`: upstream's OPENSHELL_PROBE_TIMEOUT_MS."""
OPERATION_TIMEOUT = 30.0
"""`gateway select`: upstream's OPENSHELL_OPERATION_TIMEOUT_MS."""

NOT_FOUND_MESSAGE = "openshell CLI not found. Install OpenShell before using sandbox commands."

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class OpenShellNotFound(StepError):
    """No usable `openshell` binary: upstream prints the message and exits 1."""

    def __init__(self) -> None:
        super().__init__(NOT_FOUND_MESSAGE, kind="openshell_missing", exit_code=1)


class OpenShellSpawnError(StepError):
    """The binary exists but could not be started (upstream: exit 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"  Failed to start OpenShell command: {message}", kind="openshell_spawn", exit_code=1)


def strip_ansi(text: str) -> str:
    """OpenShell colours stdout even when piped; every matcher works on stripped text."""
    return _ANSI.sub("", text or "")


def parse_version(text: str | None) -> str | None:
    """First version anywhere in `text` (upstream parseVersionFromText), else None.

    Upstream keeps only `X.Y.Z`; we keep a `-pre.N` / `-dev.N+g<sha>` suffix too, because two
    builds of the same `X.Y.Z` are different releases (docs/reference/openshell-versions.md).
    """
    return version_text(text)


def _parts(version: str) -> list[int]:
    out = []
    for p in re.split(r"[-+]", str(version), maxsplit=1)[0].split("."):
        try:
            out.append(int(p))
        except ValueError:
            out.append(0)
    return out


def version_gte(a: str, b: str) -> bool:
    """Numeric dot-wise `a >= b`; missing or non-numeric parts count as 0."""
    pa, pb = _parts(a), _parts(b)
    n = max(len(pa), len(pb))
    pa += [0] * (n - len(pa))
    pb += [0] * (n - len(pb))
    return pa >= pb


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_openshell(env: Mapping[str, str] | None = None) -> str | None:
    """The `openshell` binary in upstream's order, or None.

    `$NEMOCLAW_OPENSHELL_BIN` (absolute and executable) → PATH → ~/.local/bin → /usr/local/bin → /usr/bin.
    """
    env = os.environ if env is None else env
    override = (env.get("NEMOCLAW_OPENSHELL_BIN") or "").strip()
    if override and os.path.isabs(override) and _executable(Path(override)):
        return override
    found = shutil.which("openshell", path=env.get("PATH", os.defpath))
    if found and os.path.isabs(found):
        return found
    home = env.get("HOME") or os.path.expanduser("~")
    for cand in (Path(home) / ".local/bin/openshell", Path("/usr/local/bin/openshell"), Path("/usr/bin/openshell")):
        if _executable(cand):
            return str(cand)
    return None


def require_openshell(env: Mapping[str, str] | None = None) -> str:
    """Like `find_openshell` but raises `OpenShellNotFound` (exit 1) when there is none."""
    path = find_openshell(env)
    if path is None:
        raise OpenShellNotFound()
    return path


@attrs.frozen
class CaptureResult:
    """One `openshell` invocation. `output` follows upstream: stdout + stderr unless ignore_error."""

    args: tuple[str, ...]
    status: int
    output: str
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False

    @property
    def clean(self) -> str:
        return strip_ansi(self.output)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data


def capture_openshell(
    args: Sequence[str],
    *,
    ignore_error: bool = False,
    timeout: float | None = None,
    binary: str | None = None,
    env: Mapping[str, str] | None = None,
) -> CaptureResult:
    """Run `openshell <args>` with stdin closed; a non-zero exit never raises.

    A timeout with `ignore_error` returns status 1 and the partial output; without it, it is a
    spawn failure as upstream (`Failed to start OpenShell command: ...`, exit 1).
    """
    exe = binary or require_openshell(env)
    argv = [exe, *args]
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
        )
    except subprocess.TimeoutExpired as exc:
        if not ignore_error:
            raise OpenShellSpawnError(f"spawnSync {exe} ETIMEDOUT") from exc
        out = _text(exc.stdout)
        return CaptureResult(tuple(args), 1, out.strip(), out, _text(exc.stderr), timed_out=True)
    except OSError as exc:
        raise OpenShellSpawnError(str(exc)) from exc
    stdout, stderr = _text(proc.stdout), _text(proc.stderr)
    output = stdout if ignore_error else stdout + stderr
    return CaptureResult(tuple(args), proc.returncode, output.strip(), stdout, stderr)


def installed_openshell_version(
    *, binary: str | None = None, env: Mapping[str, str] | None = None, timeout: float = PROBE_TIMEOUT
) -> str | None:
    """The installed CLI's version (the "expected" side of every drift check), or None."""
    res = capture_openshell(["--version"], ignore_error=True, timeout=timeout, binary=binary, env=env)
    return parse_version(res.stdout)
