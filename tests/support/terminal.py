"""Run a program on a real pseudo-terminal (what a person at a terminal sees: colour, live
progress) and collect everything it wrote there."""

from __future__ import annotations

import os
import pty
import subprocess
import time


def run_on_pty(argv: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """`argv` with stdin, stdout and stderr on one pty; its exit code and the screen's text."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")
