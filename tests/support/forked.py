"""Real child processes made by fork(2), for the tests that need another process (a second lock
holder, a process SIGKILLed mid-commit, a program that gets SIGTERM or Ctrl-C).

The child is this interpreter with everything already imported, so it costs milliseconds where
a new interpreter costs 0.2-0.5 s of start-up; it has its own pid, its own open files and its
own signal dispositions, and it dies by the signals it is sent. `fork_call(fn, *args)` runs
`fn(*args)` in the child: its stdout and stderr (fds 1 and 2 and sys.stdout/sys.stderr) are
pipes to the parent, stdin a pipe from it; `SystemExit` gives the exit code, an exception
prints its traceback and exits 1, as the interpreter would. The returned `Forked` behaves like
the `subprocess.Popen` the tests used before (pid, stdin, stdout, stderr, wait, communicate,
kill, terminate, returncode: negative for a signal).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any


class Forked:
    def __init__(self, pid: int, stdin: int, stdout: int, stderr: int) -> None:
        self.pid = pid
        self.args = f"forked child {pid}"
        self.stdin = open(stdin, "w", encoding="utf-8")  # noqa: SIM115 - closed by communicate/the test
        self.stdout = open(stdout, encoding="utf-8")  # noqa: SIM115
        self.stderr = open(stderr, encoding="utf-8")  # noqa: SIM115
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if timeout is not None:
                _wait_with_timeout(self, timeout)
            else:
                self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Close stdin, read both streams to their end, reap the child (like Popen's)."""
        if not self.stdin.closed:
            self.stdin.close()
        out, err = _read_both(self.stdout, self.stderr, timeout)
        self.wait(timeout)
        return out, err

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _wait_with_timeout(child: Forked, timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    while child.poll() is None:
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(child.args, timeout)
        time.sleep(0.005)


def _read_both(out: io.TextIOBase, err: io.TextIOBase, timeout: float | None) -> tuple[str, str]:
    """Both streams to their end (stderr in a thread, so a full pipe cannot block the child)."""
    import threading

    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(err.read()), daemon=True)
    reader.start()
    text = out.read()
    reader.join(timeout)
    if reader.is_alive():
        raise subprocess.TimeoutExpired("forked child", timeout or 0)
    out.close()
    err.close()
    return text, got[0]


def fork_call(fn: Callable[..., Any], *args: Any, env: Mapping[str, str] | None = None) -> Forked:
    """Run `fn(*args)` in a forked child (with exactly `env` as its environment, if given)."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the test runner
        code = 1
        try:
            os.dup2(in_r, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
                os.close(fd)
            sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
            sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
            # As for a command typed at a terminal: Ctrl-C raises KeyboardInterrupt, SIGTERM kills.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
            try:
                fn(*args)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if exc.code is not None and not isinstance(exc.code, int):
                    print(exc.code, file=sys.stderr)
            except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught one
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    return Forked(pid, in_w, out_r, err_r)
