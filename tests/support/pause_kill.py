"""Kill a real `nemoclaw` process at an exact point inside a step: the documented test hook of
orchestrator/steps/_kill_points.py (NEMOCLAW_TEST_PAUSE_AT / NEMOCLAW_TEST_PAUSE_MARKER) stops
the run there and says so in a marker file; then the process gets SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from orchestrator.steps._kill_points import PAUSE_ENV, PAUSE_MARKER_ENV


def killed_at_pause(argv: Sequence[str], env: Mapping[str, str], point: str, marker_dir: Path) -> str:
    """Run `argv` until pause point `point` (`<point>:<sandbox>`), SIGKILL it there, return the
    run id the marker names."""
    marker = marker_dir / f"pause.{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen(list(argv), env={**env, PAUSE_ENV: point, PAUSE_MARKER_ENV: str(marker)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"{argv[0]} ended ({proc.returncode}) before pause point {point}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"pause point {point} not reached"
        time.sleep(0.05)
    pid, run_id, _where = marker.read_text().split()
    os.kill(int(pid), signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return run_id
