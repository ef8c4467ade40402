"""Run the real `nemoclaw` program against a scratch HOME with the engine's test steps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
NEMOCLAW = str(Path(sys.executable).with_name("nemoclaw"))


class Nemoclaw:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NEMOCLAW_STEP_MODULES": "engine_steps",
            "PYTHONPATH": str(HERE),
            "NEMOCLAW_WORKFLOWS_PATH": str(HERE / "workflows"),
            "ENGINE_TEST_DIR": str(home),
            "NO_COLOR": "1",
        }

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([NEMOCLAW, *args], env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([NEMOCLAW, *args], env={**self.env, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def nemoclaw(tmp_path: Path) -> Nemoclaw:
    home = tmp_path / "home"
    home.mkdir()
    return Nemoclaw(home)
