"""The `nemoclaw` command line in this process (click's runner), and as the real program.

`invoke("runs", "list", "--json", env={"HOME": ...})` parses and runs the command exactly as
the program would, with stdout and stderr kept apart, and returns what it exited with.
The few tests of the program itself (start-up, exit codes, signals) use `program()`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import attrs
from click.testing import CliRunner

NEMOCLAW = str(Path(sys.executable).with_name("nemoclaw"))


@attrs.frozen
class Invoked:
    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str, env: Mapping[str, str] | None = None) -> Invoked:
    """Run `nemoclaw ARGS` in process; `env` is laid over os.environ for the call."""
    from orchestrator.cli.root import cli

    result = CliRunner().invoke(cli, list(args), env=dict(env or {}), prog_name="nemoclaw")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Invoked(result.exit_code, result.stdout, result.stderr)


def program(*args: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed `nemoclaw` program with exactly `env` (PATH added when absent)."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    return subprocess.run([NEMOCLAW, *args], env=full, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
