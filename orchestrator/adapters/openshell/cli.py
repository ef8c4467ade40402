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
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from ...kernel.errors import StepError
from .. import deadlines
from .version import version_text

PROBE_TIMEOUT = deadlines.PROBE_SECONDS
"""The default probe bound (upstream's OPENSHELL_PROBE_TIMEOUT_MS); what runs uses
`deadlines.probe()`, which NEMOCLAW_OPENSHELL_TIMEOUT can change (adapters/deadlines.py)."""
OPERATION_TIMEOUT = 30.0
"""`gateway select`: upstream's OPENSHELL_OPERATION_TIMEOUT_MS (`deadlines.operation()` at run time)."""

NOT_FOUND_MESSAGE = "openshell CLI not found. Install OpenShell before using sandbox commands."

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class OpenShellNotFound(StepError):
    """No usable `openshell` binary: upstream prints the message (as-is) and exits 1."""

    verbatim = True

    def __init__(self) -> None:
        super().__init__(NOT_FOUND_MESSAGE, kind="openshell_missing", exit_code=1)


class OpenShellSpawnError(StepError):
    """The binary exists but could not be started (upstream: exit 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Failed to start OpenShell command: {message}", kind="openshell_spawn", exit_code=1)


class OpenShellTimeout(OpenShellSpawnError):
    """`openshell <args>` did not answer within its deadline (its process group was killed):
    the standard "could not check" answer, exit 1."""

    def __init__(self, args: Sequence[str], seconds: float) -> None:
        self.command = " ".join(["openshell", *args])
        self.seconds = seconds
        StepError.__init__(self, hung_sentence(self.command, seconds), kind="openshell_timeout", exit_code=1)


def hung_sentence(command: str, seconds: float) -> str:
    """The one sentence for a hung call (`openshell sandbox list`): what hung and what to do."""
    return (f"Could not check: `{command}` did not answer within {seconds:g} s (the OpenShell CLI or its gateway "
            f"hangs); make sure the gateway process is running and answers (`nemoclaw gateway check`), then rerun.")


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child and everything it started (its own session, so its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_bounded(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
) -> tuple[int | None, bytes, bytes]:
    """Run `argv` (stdin closed, stdout and stderr captured) in a new session; after `timeout`
    seconds kill its whole process group and return (None, what it had printed so far).

    The group, not just the child: a shell that waits on a hung grandchild would otherwise leave
    it running, holding our pipes open. Any other way out of here (Ctrl-C, SIGTERM turned into
    an exception) kills the group too; a call that ends by itself is left alone (what it started
    and detached is its business). An OSError from starting it propagates."""
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None, start_new_session=True,
    )
    try:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            try:  # the group is dead, so the pipes close; one that escaped the group cannot hold us
                out, err = proc.communicate(timeout=2)
            except subprocess.TimeoutExpired:
                out, err = b"", b""
            return None, out or b"", err or b""
        return proc.returncode, out or b"", err or b""
    finally:
        if proc.returncode is None:  # interrupted (Ctrl-C, SIGTERM as an exception): end it too
            _kill_group(proc)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass


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

    Every call has a deadline: `timeout`, else the probe bound (`deadlines.probe()`). When it
    passes, the call's process group is killed; with `ignore_error` that returns status 1, the
    partial output and `timed_out`; without it, it raises `OpenShellTimeout` (the standard
    "could not check" sentence, exit 1).
    """
    exe = binary or require_openshell(env)
    seconds = deadlines.probe() if timeout is None else timeout
    try:
        status, out_b, err_b = run_bounded([exe, *args], timeout=seconds, env=env)
    except OSError as exc:
        raise OpenShellSpawnError(str(exc)) from exc
    stdout, stderr = _text(out_b), _text(err_b)
    if status is None:
        if not ignore_error:
            raise OpenShellTimeout(args, seconds)
        return CaptureResult(tuple(args), 1, stdout.strip(), stdout, stderr, timed_out=True)
    output = stdout if ignore_error else stdout + stderr
    return CaptureResult(tuple(args), status, output.strip(), stdout, stderr)


def installed_openshell_version(
    *, binary: str | None = None, env: Mapping[str, str] | None = None, timeout: float | None = None
) -> str | None:
    """The installed CLI's version (the "expected" side of every drift check), or None."""
    res = capture_openshell(["--version"], ignore_error=True, timeout=timeout, binary=binary, env=env)
    return parse_version(res.stdout)


def probe_openshell_version(
    *, binary: str | None = None, env: Mapping[str, str] | None = None, timeout: float | None = None
) -> tuple[str | None, bool]:
    """(the installed CLI's version or None, whether `openshell --version` hung)."""
    res = capture_openshell(["--version"], ignore_error=True, timeout=timeout, binary=binary, env=env)
    return parse_version(res.stdout), res.timed_out
