"""Benchmark 1: `nemoclaw backup-all` of one sandbox holding ~500 MB in ~2,000 files, against
`docker cp` of the same directory (docker CLI, same DOCKER_HOST).

    DOCKER_HOST=unix:///tmp/nemoclaw-docker/docker.sock .venv/bin/python bench/backup_throughput.py [--runs 3]

backup-all does more than copy: it runs the OpenShell preflight and `sandbox list`, hashes every
file (SHA-256) while writing it, re-verifies the staged copy against its manifest (re-reading and
re-hashing every byte) and fsyncs before the atomic rename. Both the whole command and its
snapshot+commit states (from the run's own log) are reported. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import STATE, check_ok, host, machine, median, run_measured

FILES, SIZE = 2000, 256 * 1024  # 2,000 files of 256 KiB = 500 MiB (524 MB)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with host("throughput") as b:
        name = b.add(f"bench{b.tag}-big")
        print(f"filling {name}: {FILES} files of {SIZE} bytes ...", flush=True)
        data = b.fill(name, FILES, SIZE)
        b.register(name)
        container = b.container(name).name
        env = b.env
        docker = shutil.which("docker", path=env["PATH"]) or "docker"
        cp_times, nc_times, state_times, rss = [], [], [], []
        backed_bytes = 0
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(dir=b.home) as dest:
                m = run_measured([docker, "cp", f"{container}:{STATE}/workspace", str(Path(dest) / "workspace")], env)
                check_ok(m, "docker cp")
                cp_times.append(m.seconds)
            b.clear_backups()
            m = run_measured([b.exe, "backup-all"], env)
            check_ok(m, "nemoclaw backup-all")
            nc_times.append(m.seconds)
            rss.append(m.peak_rss)
            d = b.last_run_durations()
            state_times.append(d["snapshot"] + d["commit"])
            [backup] = [p for p in (b.home / ".nemoclaw/rebuild-backups" / name).iterdir()]
            backed_bytes = sum(f.stat().st_size for f in backup.rglob("*") if f.is_file() and f.name != "rebuild-manifest.json")
            print(f"  run {i + 1}: docker cp {cp_times[-1]:.2f} s, backup-all {nc_times[-1]:.2f} s "
                  f"(snapshot+commit {state_times[-1]:.2f} s), peak RSS {rss[-1] / 2**20:.0f} MiB", flush=True)
        cp, nc, st = median(cp_times), median(nc_times), median(state_times)
        mb = backed_bytes / 1e6
        print()
        print(f"machine: {machine()}")
        print(f"data: workspace {data / 1e6:.0f} MB in {FILES} files; backup-all copied {mb:.0f} MB (all state dirs)")
        print(f"docker cp (baseline):          {cp:6.2f} s  {data / 1e6 / cp:7.1f} MB/s")
        print(f"nemoclaw backup-all (command): {nc:6.2f} s  {mb / nc:7.1f} MB/s  ratio {nc / cp:.2f}x the time of docker cp")
        print(f"  snapshot+commit states:      {st:6.2f} s  {mb / st:7.1f} MB/s  ratio {st / cp:.2f}x")
        print(f"peak RSS of nemoclaw (median): {median(rss) / 2**20:.0f} MiB  (medians of {args.runs} runs)")


if __name__ == "__main__":
    main()
