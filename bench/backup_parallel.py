"""Benchmark 3: `nemoclaw backup-all` of 8 sandboxes of 64 MiB each, `--parallel 4` against
`--parallel 1` (the baseline).

    DOCKER_HOST=unix:///tmp/nemoclaw-docker/docker.sock .venv/bin/python bench/backup_parallel.py [--runs 5]

Runs alternate (1, 4, 1, 4, ...) so that a noisy neighbour hits both; medians are reported,
for the whole command and for its snapshot+commit states (from the run's own log).
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor

from _common import check_ok, host, machine, median, run_measured

SANDBOXES, FILES, SIZE = 8, 128, 512 * 1024  # 128 files of 512 KiB = 64 MiB each


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with host("parallel") as b:
        names = [b.add(f"bench{b.tag}-{i:02d}") for i in range(SANDBOXES)]
        print(f"filling {SANDBOXES} sandboxes with {FILES} files of {SIZE} bytes ...", flush=True)
        with ThreadPoolExecutor(max_workers=2) as pool:
            data = sum(pool.map(lambda n: b.fill(n, FILES, SIZE), names))
        b.register(*names)
        times: dict[int, list[float]] = {1: [], 4: []}
        states: dict[int, list[float]] = {1: [], 4: []}
        commits: dict[int, list[float]] = {1: [], 4: []}
        for i in range(args.runs):
            for p in (1, 4):
                b.clear_backups()
                m = run_measured([b.exe, "backup-all", "--parallel", str(p)], b.env)
                check_ok(m, f"backup-all --parallel {p}")
                d = b.last_run_durations()
                times[p].append(m.seconds)
                states[p].append(d["snapshot"] + d["commit"])
                commits[p].append(d["commit"])
                print(f"  run {i + 1} --parallel {p}: {m.seconds:.1f} s (snapshot {d['snapshot']:.1f} s + "
                      f"commit {d['commit']:.1f} s), "
                      f"peak RSS {m.peak_rss / 2**20:.0f} MiB", flush=True)
        t1, t4 = median(times[1]), median(times[4])
        s1, s4 = median(states[1]), median(states[4])
        mb = data / 1e6
        print()
        print(f"machine: {machine()}")
        print(f"data: {SANDBOXES} sandboxes, {mb:.0f} MB in total")
        print(f"--parallel 1 (baseline): {t1:6.2f} s  {mb / t1:6.1f} MB/s   (snapshot+commit {s1:6.2f} s)")
        print(f"--parallel 4:            {t4:6.2f} s  {mb / t4:6.1f} MB/s   (snapshot+commit {s4:6.2f} s)")
        print(f"commit (sequential: check, syncfs, rename): {median(commits[1]):.2f} s / {median(commits[4]):.2f} s")
        print(f"speed-up of --parallel 4: {t1 / t4:.2f}x for the command, {s1 / s4:.2f}x for snapshot+commit")


if __name__ == "__main__":
    main()
