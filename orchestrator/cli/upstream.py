"""Finding the real NemoClaw CLI beside this program (docs/reference/nemoclaw-cli.md): the one
`NEMOCLAW_UPSTREAM_CLI` names, else the first `nemoclaw` on PATH that is not one of ours.
Standard library only: cli/dispatch.py uses it before click is imported."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

UPSTREAM_ENV = "NEMOCLAW_UPSTREAM_CLI"
_OUR_SCRIPT_MARK = b"orchestrator.cli"  # in every console script pip writes for this program


def _is_ours(path: str, me: str | None) -> bool:
    """`path` is this program: the same file (any link to it), or another install's console
    script of this package (a venv's `nemoclaw` is a small Python file importing orchestrator.cli)."""
    try:
        if me is not None and os.path.samefile(path, me):
            return True
        with open(path, "rb") as fh:
            head = fh.read(2048)
    except OSError:
        return False
    return head.startswith(b"#!") and _OUR_SCRIPT_MARK in head


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


class UpstreamProblem(Exception):
    """NEMOCLAW_UPSTREAM_CLI names something that cannot be the real CLI."""


def find_upstream(env: Mapping[str, str] | None = None, me: str | None = None) -> str | None:
    """The real NemoClaw CLI's path, or None. UpstreamProblem when NEMOCLAW_UPSTREAM_CLI is set
    to something that is not an executable file other than this program."""
    env = os.environ if env is None else env
    me = me if me is not None else _me()
    named = env.get(UPSTREAM_ENV)
    if named:
        path = os.path.abspath(os.path.expanduser(named))
        if not _executable(path):
            raise UpstreamProblem(f"{UPSTREAM_ENV}={named} is not an executable file")
        if _is_ours(path, me):
            raise UpstreamProblem(f"{UPSTREAM_ENV}={named} is this program, not the NemoClaw CLI")
        return path
    for d in env.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(d or ".", "nemoclaw")
        if _executable(candidate) and not _is_ours(candidate, me):
            return os.path.abspath(candidate)
    return None


def _me() -> str | None:
    argv0 = sys.argv[0] if sys.argv else ""
    if os.sep in argv0 and os.path.exists(argv0):
        return argv0
    return None
