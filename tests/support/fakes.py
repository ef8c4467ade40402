"""Real small programs standing in for `openshell` / `openshell-gateway` (as upstream NemoClaw's
`test/e2e/test-gateway-drift-preflight.sh` does).

`FakeOpenShell` writes a bash `openshell` whose answers live in files the test can change
mid-run; every invocation is appended to `calls.log`. Gateways are real processes: `sleep`
started as `exec -a "$0"` (so /proc shows the gateway path as argv0), a TCP listener, or a
program that dies on a migration error.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from .sim_helpers import free_port  # noqa: F401 - part of this module's toolkit

STATUS_CONNECTED = "Server Status\n\n  Gateway: {gw}\n  Gateway endpoint: http://127.0.0.1:{port}\n  Status: Connected\n"
STATUS_DOWN = (
    "Server Status\n\n  Gateway: {gw}\n  Server: http://127.0.0.1:{port}\n"
    "Error:   × client error (Connect)\n  ╰─▶ tcp connect error: Connection refused (os error 111)\n"
)
INFO = "Gateway Info\n\n  Gateway: {gw}\n  Gateway endpoint: http://127.0.0.1:{port}\n"
PROTOBUF_ERR = (
    'Error: status: Internal, message: "failed to decode Protobuf message: Sandbox.metadata: '
    'SandboxResponse.sandbox: invalid wire type value: 6"\n'
)
MIGRATION_ERR = (
    "Error:   × execution error: migration error: migration 5 was previously applied but\n"
    "  │ is missing in the resolved migrations\n"
)
REAL_PYTHON = os.path.realpath(sys.executable)


def write_exec(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class FakeOpenShell:
    """An `openshell` on PATH. Behaviour files: version, status, info, list.out/.err/.rc, port,
    hang.<command> (`hang()`)."""

    def __init__(self, root: Path, bin_dir: Path, gateway: str, port: int, version: str) -> None:
        self.dir = root
        self.bin_dir = bin_dir
        self.gateway = gateway
        self.port = port
        self.calls = root / "calls.log"
        self.path = bin_dir / "openshell"
        self.set(version=f"openshell {version}\n", status=STATUS_CONNECTED, info=INFO)
        self.set_list(out="NAME   CREATED              PHASE\nalpha  2026-03-24 10:00:00  Ready\n")
        write_exec(self.path, textwrap.dedent(f"""\
            #!/bin/bash
            D={root}
            echo "$*" >> "$D/calls.log"
            # hang.<first word>[_<second>]: hang as a stuck CLI would, in a child (a grandchild of
            # whoever runs us), and record both pids so a test can see they were ended.
            H="$D/hang.$1${{2:+_$2}}"; [ -f "$H" ] || H="$D/hang.$1"
            if [ -f "$H" ]; then sleep 600 & echo "$$ $!" >> "$D/hung.pids"; wait; exit 0; fi
            up() {{ [ ! -f "$D/port" ] || (exec 3<>/dev/tcp/127.0.0.1/$(cat "$D/port")) 2>/dev/null; }}
            case "$1" in
              --version|-V) cat "$D/version" ;;
              status)
                if up; then cat "$D/status"; else cat "$D/status.down"; exit 1; fi ;;
              gateway)
                case "$2" in
                  info) cat "$D/info" ;;
                  select) echo "✓ Active gateway set to '$3'" >&2 ;;
                esac ;;
              sandbox)
                if [ "$2" = list ]; then
                  if ! up; then
                    printf 'Error:   × transport error\\n  ╰─▶ Connection refused (os error 111)\\n' >&2; exit 1
                  fi
                  cat "$D/list.out"; cat "$D/list.err" >&2; exit "$(cat "$D/list.rc")"
                fi ;;
            esac
            """))

    def set(self, **texts: str) -> None:
        for name, text in texts.items():
            (self.dir / name).write_text(text.format(gw=self.gateway, port=self.port))
        (self.dir / "status.down").write_text(STATUS_DOWN.format(gw=self.gateway, port=self.port))

    def set_list(self, out: str = "", err: str = "", rc: int = 0) -> None:
        (self.dir / "list.out").write_text(out)
        (self.dir / "list.err").write_text(err)
        (self.dir / "list.rc").write_text(str(rc))

    def hang(self, command: str) -> None:
        """From now on `openshell <command>` (e.g. "sandbox list", "status") hangs."""
        (self.dir / f"hang.{command.replace(' ', '_')}").write_text("")

    def hung_pids(self) -> list[int]:
        """The pids of every hung invocation and of the `sleep` it waits on."""
        path = self.dir / "hung.pids"
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def require_listener(self) -> None:
        """From now on status/list answer only while something accepts on the gateway port."""
        (self.dir / "port").write_text(str(self.port))

    def called(self, prefix: str) -> bool:
        if not self.calls.exists():
            return False
        return any(line.startswith(prefix) for line in self.calls.read_text().splitlines())


def gateway_script(path: Path, version: str, mode: str = "sleep") -> Path:
    """An `openshell-gateway`: `--version`, else sleep / listen on --port / die on a migration error."""
    body = {
        "sleep": 'exec -a "$0" sleep 600',
        "listen": (
            'PORT=8080; while [ $# -gt 0 ]; do [ "$1" = --port ] && PORT=$2; shift; done\n'
            f'echo "INFO Starting OpenShell server bind=127.0.0.1:$PORT"\n'
            f'exec -a "$0" {REAL_PYTHON} -c "import socket,sys,time\n'
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(16)\n"
            'while True: c, _ = s.accept(); c.close()" "$PORT"'
        ),
        "migrate-fail": (
            'echo "INFO Starting OpenShell server bind=127.0.0.1:8080"\n'
            f"printf '%s' '{MIGRATION_ERR}' >&2\nexit 1"
        ),
    }[mode]
    return write_exec(path, f'#!/bin/bash\nif [ "$1" = --version ]; then echo "openshell-gateway {version}"; exit 0; fi\n{body}\n')


class Procs:
    """Processes a test started; all ended (by pid) at teardown."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.popens: list[subprocess.Popen] = []

    def start(self, argv: list[str], timeout: float = 30) -> subprocess.Popen:
        """Start a fake gateway and return once /proc shows `argv[0]` as its argv0 (it has
        `exec -a`'d itself: what `is_live_gateway` reads) or it has exited.

        Not before: right after Popen the cmdline can still be empty (exec not finished) or
        bash's (the script has not reached `exec -a` yet), and a preflight probing then sees
        no live gateway at all. A gateway that shows neither in `timeout` fails the test."""
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.popens.append(p)
        deadline = time.monotonic() + timeout
        argv0 = None
        while p.poll() is None:
            try:
                argv0 = Path(f"/proc/{p.pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                argv0 = None
            if argv0 == argv[0]:
                return p
            if time.monotonic() > deadline:
                raise AssertionError(f"{argv[0]} (pid {p.pid}) did not show itself as argv0 within {timeout}s; argv0 {argv0!r}")
            time.sleep(0.005)
        return p

    def adopt(self, pid: int | None) -> None:
        if pid:
            self.pids.append(pid)

    def stop_all(self) -> None:
        for p in self.popens:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        for pid in self.pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
