"""On a terminal, backup-all and backups restore show rich progress (bytes and files per
sandbox; for a restore, what is written and what is read back) and keep their plain lines
intact above it; in a pipe there are no escape codes at all."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.support.terminal import run_on_pty

pytestmark = pytest.mark.docker

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.parametrize("sim", [{"sandboxes": 2}], indirect=True)
def test_progress_on_a_terminal_and_plain_lines_in_a_pipe(sim):
    env = {**sim.env, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    exe = shutil.which("nemoclaw", path=env["PATH"])
    code, screen = run_on_pty([exe, "backup-all"], env)
    assert code == 0, screen
    text = ANSI.sub("", screen).replace("\r", "\n")
    lines = [l.rstrip() for l in text.splitlines()]
    assert "  Backing up 'alpha'..." in lines and "  Backing up 'beta'..." in lines
    assert "  Pre-upgrade backup: 2 backed up, 0 failed, 0 skipped" in lines
    assert re.search(r"alpha\s+[\d.]+ (KiB|MiB)\s+\d+ files", text), text  # its row, with its data
    assert "\x1b[" in screen  # colour on a terminal

    piped = sim.run(["nemoclaw", "backup-all"], env={**sim.env})
    assert piped.returncode == 0
    assert "\x1b" not in piped.stdout + piped.stderr
    assert "  Pre-upgrade backup: 2 backed up, 0 failed, 0 skipped" in piped.stdout.splitlines()

    code, screen = run_on_pty([exe, "backups", "restore", "alpha"], env)
    assert code == 0, screen
    text = ANSI.sub("", screen).replace("\r", "\n")
    assert re.search(r"Writing 'alpha'\s+[\d.]+ (B|KiB|MiB)\s+\d+ files", text), text
    assert re.search(r"Reading back 'alpha'\s+[\d.]+ (B|KiB|MiB)\s+\d+ files", text), text
    assert re.search(r"✓ Restored 'alpha' from \S+; \d+ files verified in the sandbox\.", text), text

    piped = sim.run(["nemoclaw", "backups", "restore", "alpha"], env={**sim.env})
    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stdout + piped.stderr and "Writing" not in piped.stdout + piped.stderr
