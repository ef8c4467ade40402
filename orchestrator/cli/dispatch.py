"""Which program answers a `nemoclaw` command line: ours, or the real NemoClaw CLI
(docs/reference/nemoclaw-cli.md).

We implement a few commands (our workflows and management groups); every other command line
is handed to the real NemoClaw CLI unchanged, by exec: the same argv, stdin, stdout, stderr and
exit code, and nothing of ours printed. `nemoclaw <name> rebuild [args]` is our
`rebuild-sandbox <name> [args]`. The real CLI is the one `NEMOCLAW_UPSTREAM_CLI` names, else
the first `nemoclaw` on PATH that is not one of ours. With none found, a command that is not
ours exits 127 with one sentence.

This runs before anything else of the program and imports nothing heavy (not click): a
pass-through costs a directory listing of the workflow path and a PATH scan.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..kernel.nemoclaw_commands import GLOBAL_COMMANDS, REBUILD_FLAGS_WITHOUT_MEANING_HERE
from .upstream import UPSTREAM_ENV, UpstreamProblem, find_upstream

NOT_FOUND_EXIT = 127
OUR_OPTIONS = frozenset({"-h", "--help", "--version"})


def route(argv: Sequence[str]) -> list[str] | None:
    """Our command line for `argv` (rewritten for the sandbox-first `<name> rebuild`), or None
    when it belongs to the real NemoClaw CLI."""
    args = list(argv)
    if not args or args[0] in OUR_OPTIONS:
        return args
    first = args[0]
    from .groups import GROUPS

    if first in GROUPS:
        return args
    if first.startswith("-"):
        return None  # an option of the real CLI's
    from ..workflow.discover import find_all

    found = find_all().get(first)
    # A user workflow never shadows a real command (the loader refuses its name).
    if found is not None and (found.builtin or first not in GLOBAL_COMMANDS):
        return args
    if len(args) >= 2 and args[1] == "rebuild" and first not in GLOBAL_COMMANDS:
        return ["rebuild-sandbox", first, *(a for a in args[2:] if a not in REBUILD_FLAGS_WITHOUT_MEANING_HERE)]
    return None


def not_found_message(argv: Sequence[str]) -> str:
    return (f"  The NemoClaw CLI was not found, and `{' '.join(['nemoclaw', *argv])}` is not one of this program's "
            f"commands: install NemoClaw, or set {UPSTREAM_ENV} to the path of its `nemoclaw`.")


def hand_over(argv: Sequence[str]) -> None:
    """exec the real CLI with `argv`; never returns (exit 127 when there is none, 126 when it
    cannot be run)."""
    try:
        upstream = find_upstream()
    except UpstreamProblem as exc:
        sys.stderr.write(f"  The NemoClaw CLI was not found: {exc}; set {UPSTREAM_ENV} to the path of NemoClaw's "
                         "`nemoclaw`, or unset it.\n")
        sys.exit(NOT_FOUND_EXIT)
    if upstream is None:
        sys.stderr.write(not_found_message(argv) + "\n")
        sys.exit(NOT_FOUND_EXIT)
    import signal

    # Python ignores SIGPIPE and SIGXFSZ; an ignored signal stays ignored across exec, so give
    # the real CLI the dispositions it would have had when started directly.
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execv(upstream, [upstream, *argv])
    except OSError as exc:
        sys.stderr.write(f"  Cannot run the NemoClaw CLI {upstream}: {exc.strerror or exc}.\n")
        sys.exit(126)


def main() -> None:
    argv = sys.argv[1:]
    ours = route(argv)
    if ours is None:
        hand_over(argv)
        return
    sys.argv[1:] = ours
    from .root import main as run

    run()
