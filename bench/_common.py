"""Shared set-up for the benchmarks: a simulated NemoClaw host (the OpenShell stand-in) whose
sandboxes are real containers on the Docker engine at DOCKER_HOST, filled with data inside the
running containers (the engine uses vfs: every container copies its image, so images stay small).

Not part of the test suite. Every benchmark cleans up its containers and scratch directory.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nemoclaw_sim import deploy  # noqa: E402

HOME = "/sandbox"  # the sandbox home: what a whole-home backup (the default) holds
STATE = "/sandbox/.openclaw"
MiB = 1024 * 1024


@dataclass
class Bench:
    home: Path
    tag: str
    sandboxes: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return deploy.sim_env(self.home)

    @property
    def exe(self) -> str:
        found = shutil.which("nemoclaw", path=self.env["PATH"])
        assert found, "nemoclaw not found on the simulated PATH"
        return found

    def add(self, name: str) -> str:
        deploy.sandbox_add(self.home, name)
        self.sandboxes.append(name)
        return name

    def container(self, name: str):
        [c] = docker().containers.list(filters={"label": f"openshell.ai/sandbox-name={name}"})
        return c

    def sh(self, name: str, script: str) -> str:
        rc, out = self.container(name).exec_run(["sh", "-c", script], user="root")
        if rc != 0:
            raise RuntimeError(f"in {name}: exit {rc}: {out.decode(errors='replace')}")
        return out.decode()

    def fill(self, name: str, files: int, size: int, subdir: str = "workspace/bench", per_dir: int = 100) -> int:
        """Write `files` random files of `size` bytes into the sandbox, `per_dir` per directory."""
        script = (
            f"set -e; cd {STATE}; i=0; while [ $i -lt {files} ]; do d={subdir}/d$((i / {per_dir})); "
            f"mkdir -p $d; dd if=/dev/urandom of=$d/f$i bs={size} count=1 2>/dev/null; i=$((i + 1)); done; "
            f"du -sk {subdir} | cut -f1"
        )
        return int(self.sh(name, script).strip()) * 1024

    def fill_small(self, name: str, files: int, lo: int, hi: int, subdir: str = "workspace/small",
                   per_dir: int = 100, seed: int = 25) -> int:
        """Write `files` random files of `lo`-`hi` bytes into the sandbox, `per_dir` per directory, in
        one `put_archive` (a `dd` per file would take minutes for 20,000 files). Returns the bytes."""
        import io
        import random
        import tarfile

        rng = random.Random(seed)
        buf = io.BytesIO()
        total = 0
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for i in range(files):
                size = rng.randint(lo, hi)
                info = tarfile.TarInfo(f"{subdir}/d{i // per_dir}/f{i}")
                info.size, info.mode, info.mtime = size, 0o644, int(time.time())
                tar.addfile(info, io.BytesIO(os.urandom(size)))
                total += size
        self.sh(name, f"mkdir -p {STATE}")
        if not self.container(name).put_archive(STATE, buf.getvalue()):
            raise RuntimeError(f"put_archive into {name} failed")
        return total

    def register(self, *names: str) -> None:
        reg = deploy.Paths(self.home).registry_file
        doc = json.loads(reg.read_text())
        doc["sandboxes"] = {n: deploy.registry_entry(n, deploy.load(self.home).agent_version) for n in names}
        doc["defaultSandbox"] = names[0] if names else None
        reg.write_text(json.dumps(doc, indent=2))

    def replay_openshell(self) -> None:
        """Make every `openshell` call (and `openshell-gateway --version`) cost what the real
        native CLI's does, a few milliseconds, instead of the Python stand-in's ~0.1 s start: a
        bash wrapper answers each command line with what the stand-in printed (stdout, stderr,
        exit code) the first time it was run, byte for byte. Valid while the host does not change
        (a benchmark's host does not); other `openshell-gateway` command lines (starting the
        gateway) go to the stand-in unchanged."""
        replay_openshell(self.home)

    def clear_backups(self) -> None:
        shutil.rmtree(self.home / ".nemoclaw" / "rebuild-backups", ignore_errors=True)

    def last_run_durations(self) -> dict[str, float]:
        """State -> seconds, from the newest run log (the run's own measurement of each state)."""
        runs = sorted((self.home / ".nemoclaw" / "runs").glob("*.jsonl"))
        out: dict[str, float] = {}
        for line in runs[-1].read_text().splitlines():
            ev = json.loads(line)
            if ev.get("event") == "state_left":
                out[ev["state"]] = ev["duration_s"]
        return out


def replay_openshell(home: Path) -> None:
    """See `Bench.replay_openshell`."""
    bindir = deploy.Paths(home).bin
    cache = home / ".openshell-replay"
    cache.mkdir(exist_ok=True)
    for prog, only in (("openshell", None), ("openshell-gateway", "--version")):
        real = bindir / f".stand-in-{prog}"
        if not real.exists():
            (bindir / prog).rename(real)
        cond = f'[ "$*" = {only!r} ]' if only else "true"
        (bindir / prog).write_text(f"""#!/bin/bash
# {prog}: replays what the stand-in answered to the same command line (bench/_common.py)
if {cond}; then
  k="{prog} $*"; k="${{k//\//%}}"; f="{cache}/${{k// /_}}"
  if [ -f "$f.rc" ]; then
    [ -s "$f.out" ] && cat "$f.out"; [ -s "$f.err" ] && cat "$f.err" >&2; exit "$(<"$f.rc")"
  fi
  (exec -a "$0" {real} "$@" >"$f.out" 2>"$f.err"); rc=$?
  echo $rc > "$f.rc"; cat "$f.out"; cat "$f.err" >&2; exit $rc
fi
exec -a "$0" {real} "$@"
""")
        (bindir / prog).chmod(0o755)


def replayed_calls(home: Path) -> list[list[str]]:
    """The command lines the replaying wrapper has answered (one recorded answer each)."""
    return [p.name[: -len(".rc")].split("_") for p in sorted((home / ".openshell-replay").glob("*.rc"))]


_docker = None


def docker():
    global _docker
    if _docker is None:
        import docker as sdk

        _docker = sdk.from_env(timeout=600)
    return _docker


@contextmanager
def host(prefix: str) -> Iterator[Bench]:
    """A fresh simulated host with no sandboxes; torn down (containers removed) at the end."""
    if not os.environ.get("DOCKER_HOST"):
        sys.exit("set DOCKER_HOST (e.g. unix:///tmp/nemoclaw-docker/docker.sock)")
    scratch = Path(tempfile.mkdtemp(prefix=f"nemoclaw-bench-{prefix}-")).resolve()
    home = scratch / "home"
    home.mkdir()
    b = Bench(home=home, tag=uuid.uuid4().hex[:6])
    try:
        deploy.up(home, sandboxes=0)
        yield b
    finally:
        try:
            deploy.down(home)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Measured:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    peak_rss: int  # bytes: VmHWM of the process itself (polled from /proc)
    tree_maxrss: int  # bytes: ru_maxrss from wait4 (largest of the process and its waited-for children)


def run_measured(argv: Sequence[str], env: dict[str, str], poll: float = 0.02) -> Measured:
    """Run a command, timing it and polling /proc/<pid>/status for its peak RSS (VmHWM)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(argv), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    hwm = 0
    status = Path(f"/proc/{proc.pid}/status")
    out_f = proc.stdout
    err_f = proc.stderr
    import threading

    chunks: dict[str, list[bytes]] = {"out": [], "err": []}

    def drain(f, key: str) -> None:
        for block in iter(lambda: f.read(65536), b""):
            chunks[key].append(block)

    threads = [threading.Thread(target=drain, args=(out_f, "out")), threading.Thread(target=drain, args=(err_f, "err"))]
    for t in threads:
        t.start()
    while True:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(poll)
    seconds = time.perf_counter() - t0
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(st)
    return Measured(seconds, proc.returncode, b"".join(chunks["out"]).decode(errors="replace"),
                    b"".join(chunks["err"]).decode(errors="replace"), hwm, ru.ru_maxrss * 1024)


def timed(argv: Sequence[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(list(argv), env=env, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except (OSError, ValueError):
        pass
    info = docker().info()
    return (f"{time.strftime('%Y-%m-%d')}, {platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), "
            f"{mem} MiB RAM, Docker {info.get('ServerVersion')} storage driver {info.get('Driver')}, "
            f"Python {platform.python_version()}")


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def check_ok(m: Measured, what: str) -> None:
    if m.returncode != 0:
        raise SystemExit(f"{what} failed (exit {m.returncode}):\n{m.stdout}\n{m.stderr}")


def top_level_import_seconds(importtime_stderr: str) -> float:
    """The sum of the top-level imports' cumulative times in `python -X importtime` output."""
    total = 0
    for line in importtime_stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if cumulative.strip().isdigit() and not name.startswith("  "):  # top level only
            total += int(cumulative)
    return total / 1e6
