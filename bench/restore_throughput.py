"""Benchmark 4: `nemoclaw backups restore` of one sandbox (250 MiB in 2,000 files) against
a checked restore by hand: `docker cp` of the backed-up directory into the container, then
`docker cp` of it out again (to compare).

    DOCKER_HOST=unix:///tmp/nemoclaw-docker/docker.sock .venv/bin/python bench/restore_throughput.py [--runs 5]

restore does more than copy: it checks the backup against its manifest first (re-hash), removes
the state dirs in the sandbox, streams the backup in with the manifest's modes and the sandbox
owner, then reads every restored path back and compares it with the manifest (size, SHA-256,
mode, link targets). docker cp only copies. Runs alternate. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import STATE, check_ok, host, machine, median, run_measured

FILES, SIZE = 2000, 128 * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scope", choices=("home", "agent"), default="home",
                    help="the backup's scope (default home, backup-all's default)")
    ap.add_argument("--replay-openshell", action="store_true",
                    help="answer openshell calls in a few ms, as the native CLI does (bench/_common.py)")
    args = ap.parse_args()
    with host("restore") as b:
        name = b.add(f"bench{b.tag}-restore")
        data = b.fill(name, FILES, SIZE)
        b.register(name)
        env = b.env
        check_ok(run_measured([b.exe, "backup-all", "--scope", args.scope], env), "backup-all")
        [backup] = list((b.home / ".nemoclaw/rebuild-backups" / name).iterdir())
        c = b.container(name)
        docker_cli = shutil.which("docker", path=env["PATH"]) or "docker"
        if args.replay_openshell:
            b.replay_openshell()
        cp_t, out_t, nc_t = [], [], []
        for i in range(args.runs):
            # The baseline is a checked restore by hand: the filled directory copied in (the bulk
            # of the data), then copied out again to compare; restore writes and reads back the
            # whole backup (the home, or the agent's dirs).
            b.sh(name, f"rm -rf {STATE}/workspace")
            rel = ".openclaw/workspace" if args.scope == "home" else "workspace"
            m = run_measured([docker_cli, "cp", str(backup / rel), f"{c.name}:{STATE}/workspace"], env)
            check_ok(m, "docker cp")
            cp_t.append(m.seconds)
            with tempfile.TemporaryDirectory(dir=b.home) as dest:
                m = run_measured([docker_cli, "cp", f"{c.name}:{STATE}/workspace", str(Path(dest) / "back")], env)
                check_ok(m, "docker cp out")
                out_t.append(m.seconds)
            m = run_measured([b.exe, "backups", "restore", name], env)
            check_ok(m, "nemoclaw backups restore")
            nc_t.append(m.seconds)
            print(f"  run {i + 1}: docker cp in {cp_t[-1]:.2f} s + out {out_t[-1]:.2f} s, backups restore "
                  f"{nc_t[-1]:.2f} s", flush=True)
        out = median(out_t)
        cp, nc = median(cp_t), median(nc_t)
        both = median([a + b_ for a, b_ in zip(cp_t, out_t)])
        mb = data / 1e6
        print()
        print(f"machine: {machine()}")
        print(f"data: {mb:.0f} MB in {FILES} files (workspace); backup scope {args.scope}; medians of {args.runs} runs")
        print(f"docker cp in (workspace only):           {cp:6.2f} s  {mb / cp:7.1f} MB/s")
        print(f"docker cp in + docker cp out (baseline): {both:6.2f} s  (out alone {out:.2f} s)")
        print(f"nemoclaw backups restore (all dirs):     {nc:6.2f} s  {mb / nc:7.1f} MB/s  ratio {nc / both:.2f}x "
              f"docker cp in + out, {nc / cp:.2f}x docker cp in")


if __name__ == "__main__":
    main()
