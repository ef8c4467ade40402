"""The engine's test workflows (tests/support/workflows/) and steps (tests/support/engine_steps.py),
run in process or as the real `nemoclaw` program.

`Engine.run("t-route", allow=True)` loads the workflow by name from the workflow path, fills in
the options' defaults as the command line would, and calls `run_workflow` with a reporter that
writes to strings: the run, its journal and its files are real, only the process is not.
`Program` runs the real `nemoclaw`: `run`/`popen` as a new interpreter (the command line
itself: start-up, exit codes, streams), `fork` as a forked child of this one calling the same
entry point `orchestrator.cli:main` (a real process for signals, kills and a second lock holder,
without the start-up; tests/support/forked.py).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from orchestrator.engine.output import Reporter
from orchestrator.engine.run import KILL_ENV, RunResult, run_workflow
from orchestrator.kernel.paths import Paths
from orchestrator.engine.loader import load_by_name

from tests.support.forked import Forked, fork_call
import tests.support.engine_steps  # noqa: F401 - registers the engine's test steps in this process

HERE = Path(__file__).resolve().parent
WORKFLOWS = HERE / "workflows"
ROOT = HERE.parents[1]
STEP_MODULE = "tests.support.engine_steps"
NEMOCLAW = str(Path(sys.executable).with_name("nemoclaw"))

GOOD_WORKFLOW = """\
name: {name}
summary: A valid workflow.
initial: first
states:
  first:
    do: t_branch
    next: second
    branches:
      empty: done
  second:
    do: t_ok
    next: done
"""
"""A valid workflow of the test steps (`.format(name=...)`); the validation tests break it one way each."""


@attrs.frozen
class Ran:
    """One in-process run: what the command would have exited with and printed."""

    returncode: int
    stdout: str
    stderr: str
    result: RunResult


def engine_env(home: Path) -> dict[str, str]:
    """What a run of the test workflows sees: scratch HOME, the test workflows and steps."""
    return {
        "HOME": str(home),
        "NEMOCLAW_STEP_MODULES": STEP_MODULE,
        "NEMOCLAW_WORKFLOWS_PATH": str(WORKFLOWS),
        "ENGINE_TEST_DIR": str(home),
        "NO_COLOR": "1",
    }


class Engine:
    """Runs the test workflows in this process, against a scratch HOME."""

    def __init__(self, home: Path, monkeypatch: Any) -> None:
        self.home = home
        self._monkeypatch = monkeypatch
        for key, value in engine_env(home).items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv(KILL_ENV, raising=False)  # a kill point would SIGKILL the test process itself

    @property
    def paths(self) -> Paths:
        return Paths(self.home)

    def run(self, workflow: str, *, debug: bool = False, env: Mapping[str, str] | None = None, **options: Any) -> Ran:
        spec = load_by_name(workflow, self.paths)
        unknown = set(options) - set(spec.options) - {a.name for a in spec.arguments}
        assert not unknown, f"{workflow} has no option(s) {sorted(unknown)}"
        values = {name: o.default for name, o in spec.options.items()} | options
        out = Reporter(stdout=io.StringIO(), stderr=io.StringIO())
        with self._monkeypatch.context() as m:
            for key, value in (env or {}).items():
                m.setenv(key, value)
            result = run_workflow(spec, values, paths=self.paths, out=out, debug=debug)
        return Ran(result.exit_code, out.stdout.getvalue(), out.stderr.getvalue(), result)

    def events(self, workflow: str) -> list[dict]:
        """The journal events of the newest run of `workflow`."""
        return journal_events(self.home, workflow)


def _sigint_as_at_a_terminal() -> None:
    """In the child before exec: SIGINT at its default, as for a command typed at a terminal.
    A test runner started in the background inherits SIGINT ignored, and so would the program:
    Python then installs no KeyboardInterrupt handler and a Ctrl-C test could never pass."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Program:
    """The real `nemoclaw` program with the engine's test workflows and steps."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **engine_env(home)}

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([NEMOCLAW, *args], env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, preexec_fn=_sigint_as_at_a_terminal)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([NEMOCLAW, *args], env={**self.env, **(env or {})}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                                preexec_fn=_sigint_as_at_a_terminal)


    def fork(self, *args: str, env: dict[str, str] | None = None) -> Forked:
        """`nemoclaw ARGS` as a forked child: the program's entry point with this argv and exactly
        the program's environment, its own pid, streams and signal dispositions."""
        return fork_call(_program_main, ["nemoclaw", *args], env={**self.env, **(env or {})})


def _program_main(argv: list[str]) -> None:
    from orchestrator.cli import main

    sys.argv = argv
    main()


def journal_events(home: Path, workflow: str) -> list[dict]:
    logs = sorted((home / ".nemoclaw" / "runs").glob("*.jsonl"))
    for log in reversed(logs):
        events = [json.loads(line) for line in log.read_text().splitlines()]
        if events[0]["workflow"] == workflow:
            return events
    raise AssertionError(f"no run log for {workflow}")
