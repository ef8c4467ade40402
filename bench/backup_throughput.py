"""Benchmark 1: `nemoclaw backup-all` of one sandbox against `docker cp` of the same directory
out of the container (docker CLI, same DOCKER_HOST) and against reading the raw `get_archive`
stream of every state dir in Python and discarding it (the physical limit here). Two data
sets: 250 MiB in 2,000 files (128 KiB each), ~2 GB of mixed sizes, and 20,000 files of 1-4 KB
(`tiny`, ~51 MB: a sandbox home is mostly small files). Peak RSS of nemoclaw
for each set (flat in data size: streamed).

    DOCKER_HOST=unix:///tmp/nemoclaw-docker/docker.sock .venv/bin/python bench/backup_throughput.py [--runs 5] [--sets small,large]

backup-all does more than copy: it runs the OpenShell preflight and `sandbox list`, hashes
every file (SHA-256) while writing it, writes the manifest, proves the staged tree is the one
hashed, syncs it to disk (syncfs) and renames it into place. Runs alternate docker cp, raw
stream, backup-all so a noisy neighbour hits all three. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import HOME, STATE, check_ok, docker, host, machine, median, run_measured

SETS = {
    # name: [(files, size, subdir)]; a size (lo, hi) is random in that range, written in one put_archive
    "small": [(2000, 128 * 1024, "workspace/bench")],
    "tiny": [(20000, (1024, 4096), "workspace/tiny")],  # a venv, node_modules, chat logs: small files
    "large": [(12, 128 * 2**20, "workspace/big"), (400, 2**20, "workspace/mid"), (4000, (16 * 1024, 16 * 1024), "workspace/small"),
              (100, (1000, 1000), "agents/tiny")],
}
STATE_DIRS = ("agents", "extensions", "workspace", "skills", "hooks", "canvas", "cron", "memory", "telegram",
              "wechat", "whatsapp", "credentials")


def raw_stream(container, paths) -> float:
    t0 = time.perf_counter()
    for path in paths:
        chunks, _ = container.get_archive(path)
        for _ in chunks:
            pass
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sets", default="small,tiny,large")
    ap.add_argument("--scope", choices=("home", "agent"), default="home",
                    help="backup-all's --scope (default home, its default); the baselines read the same tree")
    ap.add_argument("--no-freeze", action="store_true", help="pass --no-freeze (default: frozen, backup-all's default)")
    ap.add_argument("--replay-openshell", action="store_true",
                    help="answer openshell calls in a few ms, as the native CLI does (bench/_common.py)")
    args = ap.parse_args()
    root = HOME if args.scope == "home" else STATE  # what docker cp copies: the tree backup-all reads
    results = {}
    print(f"machine: {machine()}", flush=True)
    for set_name in args.sets.split(","):
        with host(f"throughput-{set_name}") as b:
            name = b.add(f"bench{b.tag}-{set_name}")
            data = 0
            files = 0
            for n, size, sub in SETS[set_name]:
                print(f"filling {name}: {n} files of {size} bytes in {sub} ...", flush=True)
                data += b.fill_small(name, n, *size, subdir=sub) if isinstance(size, tuple) else b.fill(name, n, size, subdir=sub)
                files += n
            b.register(name)
            if args.replay_openshell:
                b.replay_openshell()
            c = b.container(name)
            present = [d for d in STATE_DIRS if b.sh(name, f"[ -d {STATE}/{d} ] && echo y || true").strip()]
            streams = [f"{HOME}/."] if args.scope == "home" else [f"{STATE}/{d}" for d in present]
            ours = [b.exe, "backup-all", "--scope", args.scope, *(["--no-freeze"] if args.no_freeze else [])]
            env = b.env
            docker_cli = shutil.which("docker", path=env["PATH"]) or "docker"
            cp_t, raw_t, nc_t, st_t, rss = [], [], [], [], []
            for i in range(args.runs):
                with tempfile.TemporaryDirectory(dir=b.home) as dest:
                    m = run_measured([docker_cli, "cp", f"{c.name}:{root}", str(Path(dest) / "state")], env)
                    check_ok(m, "docker cp")
                    cp_t.append(m.seconds)
                raw_t.append(raw_stream(c, streams))
                b.clear_backups()
                m = run_measured(ours, env)
                check_ok(m, "nemoclaw backup-all")
                nc_t.append(m.seconds)
                rss.append(m.peak_rss)
                d = b.last_run_durations()
                st_t.append(d["snapshot"] + d["commit"])
                print(f"  run {i + 1}: docker cp {cp_t[-1]:.2f} s, raw stream {raw_t[-1]:.2f} s, backup-all "
                      f"{nc_t[-1]:.2f} s (snapshot+commit {st_t[-1]:.2f} s), peak RSS {rss[-1] / 2**20:.0f} MiB", flush=True)
            cp, raw, nc, st = median(cp_t), median(raw_t), median(nc_t), median(st_t)
            results[set_name] = (data, files, cp, raw, nc, st, median(rss))
    print()
    print(f"machine: {machine()}")
    print(f"medians of {args.runs} runs; backup-all --scope {args.scope}{' --no-freeze' if args.no_freeze else ' (frozen)'}; "
          f"openshell {'calls replayed (a few ms each)' if args.replay_openshell else 'the Python stand-in'}; "
          f"docker cp copies {root} in one command" + (" (a superset of the state dirs)" if args.scope == "agent" else ""))
    for set_name, (data, files, cp, raw, nc, st, peak) in results.items():
        mb = data / 1e6
        print(f"[{set_name}] {mb:.0f} MB in {files} files")
        print(f"  docker cp out (baseline):      {cp:6.2f} s  {mb / cp:7.1f} MB/s")
        print(f"  raw get_archive stream:        {raw:6.2f} s  {mb / raw:7.1f} MB/s")
        print(f"  nemoclaw backup-all (command): {nc:6.2f} s  {mb / nc:7.1f} MB/s  ratio {nc / cp:.2f}x docker cp, "
              f"{nc / raw:.2f}x the raw stream")
        print(f"    snapshot+commit states:      {st:6.2f} s  ratio {st / cp:.2f}x docker cp, {st / raw:.2f}x the raw stream")
        print(f"  peak RSS of nemoclaw:          {peak / 2**20:6.1f} MiB")


if __name__ == "__main__":
    main()
