"""Benchmark 5: how fast a command starts. `nemoclaw --help`: wall time and the time spent in
imports (`python -X importtime`, the cumulative time of the top-level imports); a refused
`backup-all` (CLI 0.0.44, gateway 0.0.43: the preflight refuses): median wall time; a command
that is not ours (`nemoclaw alpha connect`) handed to the real CLI, against running that CLI
directly. Against the interpreter's own start (`python -c pass`).

    DOCKER_HOST=unix:///tmp/nemoclaw-docker/docker.sock .venv/bin/python bench/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _common import deploy, host, machine, median, replayed_calls, top_level_import_seconds


def wall(argv, env=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - t0


def import_seconds(exe: str, env) -> float:
    out = subprocess.run([sys.executable, "-X", "importtime", exe, "--help"], env=env, capture_output=True, text=True)
    return top_level_import_seconds(out.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    with host("startup") as b:
        b.register(b.add(f"bench{b.tag}-s"))
        failure = deploy.swap_gateway(b.home, "0.0.43")[1]
        assert failure, "the 0.0.43 gateway should not come up on the 0.0.44 database"
        env = b.env
        base = median([wall([sys.executable, "-c", "pass"]) for _ in range(args.runs)])
        helps = median([wall([b.exe, "--help"], env) for _ in range(args.runs)])
        imports = median([import_seconds(b.exe, env) for _ in range(args.runs)])
        rc = subprocess.run([b.exe, "backup-all"], env=env, capture_output=True).returncode
        assert rc == 1, f"backup-all should have refused (exit 1), got exit {rc}"
        refused = median([wall([b.exe, "backup-all"], env) for _ in range(args.runs)])
        # The same with every openshell call answered in a few ms, as the real native CLI does
        # (the stand-in is a Python program: ~0.1 s a start); then those calls alone.
        b.replay_openshell()
        assert subprocess.run([b.exe, "backup-all"], env=env, capture_output=True).returncode == 1
        calls = replayed_calls(b.home)
        replayed = median([wall([b.exe, "backup-all"], env) for _ in range(args.runs)])
        bindir = deploy.Paths(b.home).bin
        calls_alone = median([sum(wall([str(bindir / c[0]), *c[1:]], env) for c in calls) for _ in range(args.runs)])
        # A command that is not ours, handed to the real CLI (here a shell script that exits 0).
        upstream = b.home / "npm-bin" / "nemoclaw"
        upstream.parent.mkdir()
        upstream.write_text("#!/bin/sh\nexit 0\n")
        upstream.chmod(0o755)
        through_env = {**env, "NEMOCLAW_UPSTREAM_CLI": str(upstream)}
        direct = median([wall([str(upstream), "alpha", "connect"], env) for _ in range(args.runs)])
        through = median([wall([b.exe, "alpha", "connect"], through_env) for _ in range(args.runs)])
        print(f"machine: {machine()}")
        print(f"medians of {args.runs} runs")
        print(f"python -c pass (baseline):   {base:6.3f} s")
        print(f"nemoclaw --help:             {helps:6.3f} s  ({helps / base:.1f}x the interpreter start)")
        print(f"  of which imports:          {imports:6.3f} s")
        print(f"refused backup-all (exit {rc}): {refused:6.3f} s  (openshell: the Python stand-in)")
        print(f"  the same, its {len(calls)} openshell calls replayed: {replayed:6.3f} s; those calls alone, one after "
              f"the other: {calls_alone:.3f} s")
        print(f"  refused backup-all minus its openshell calls: {replayed - calls_alone:6.3f} s")
        print(f"nemoclaw alpha connect, handed to the real CLI: {through:6.3f} s  (the real CLI alone {direct:.3f} s)")


if __name__ == "__main__":
    main()
