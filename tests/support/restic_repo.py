"""A real restic repository for tests: a password file, a `restic` on PATH that records every
argv it is started with before running Debian's restic, and a REST server on 127.0.0.1
(`rclone serve restic`) that a test can stop and start again on the same port."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import attrs

from .sim_helpers import free_port, listening

REAL_RESTIC = shutil.which("restic") or "/usr/bin/restic"


@attrs.define
class ResticSetup:
    """Everything a test's `nemoclaw` needs for a repository, as environment variables."""

    root: Path
    password: str
    location: str
    bin_dir: Path
    argv_log: Path
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "HOME": str(self.home),
            "PATH": f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "NEMOCLAW_BACKUP_REPOSITORY": self.location,
            "RESTIC_PASSWORD_FILE": str(self.root / "password"),
            "NEMOCLAW_BACKUP_HOST": "host-a",
            "RESTIC_CACHE_DIR": str(self.root / "cache"),
            **extra,
        }

    def argvs(self) -> list[str]:
        """Every argv the wrapped restic was started with (one line each)."""
        return self.argv_log.read_text().splitlines() if self.argv_log.exists() else []


def make_setup(tmp_path: Path, location: str | None = None, home: Path | None = None) -> ResticSetup:
    root = tmp_path / "restic"
    root.mkdir(parents=True, exist_ok=True)
    password = "pw-" + secrets.token_hex(12)
    (root / "password").write_text(password + "\n")
    os.chmod(root / "password", 0o600)
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    argv_log = root / "argv.log"
    wrapper = bin_dir / "restic"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0 $*" >> "{argv_log}"\nexec {REAL_RESTIC} "$@"\n')
    wrapper.chmod(0o755)
    home = home or tmp_path / "home"
    (home / ".nemoclaw").mkdir(parents=True, exist_ok=True)
    return ResticSetup(root=root, password=password, location=location or str(root / "repo"), bin_dir=bin_dir,
                       argv_log=argv_log, home=home)


def restic(setup: ResticSetup, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Debian's restic run by hand against the test's repository (the baseline, and for poking)."""
    env = {**os.environ, **setup.env()}
    env["RESTIC_REPOSITORY"] = setup.location
    return subprocess.run([REAL_RESTIC, *args], env=env, capture_output=True, text=True, check=check, timeout=300,
                          stdin=subprocess.DEVNULL)


@attrs.define
class RestServer:
    """`rclone serve restic` over `data`, on 127.0.0.1 only, at a free port."""

    data: Path
    port: int = attrs.field(factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rest:http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        log = open(self.data.parent / f"rclone-{self.port}.log", "ab")
        self.proc = subprocess.Popen(["rclone", "serve", "restic", "--addr", f"127.0.0.1:{self.port}", str(self.data)],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while not listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rclone serve restic did not listen on 127.0.0.1:{self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
