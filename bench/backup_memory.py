"""Benchmark 2: peak memory (RSS) of `nemoclaw backup-all` backing up one sandbox of ~500 MB in
~2,000 files, against the same command backing up a sandbox with only the stock ~2 MB state
(the baseline: what the program needs whatever the data size).

    DOCKER_HOST=unix:///tmp/nemoclaw-docker/docker.sock .venv/bin/python bench/backup_memory.py [--runs 2]

Peak RSS is the nemoclaw process's own VmHWM, polled from /proc/<pid>/status while it runs
(VmHWM only grows, so the last reading is the peak). The wait4 figure (ru_maxrss) is the largest
of the process and the children it waited for (the `openshell` CLI runs). Backups are streamed
to disk and hashed as they arrive, so the peak should not grow with the data.
"""

from __future__ import annotations

import argparse

from _common import check_ok, host, machine, median, run_measured

FILES, SIZE = 2000, 256 * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    with host("memory") as b:
        big = b.add(f"bench{b.tag}-big")
        small = b.add(f"bench{b.tag}-small")
        print(f"filling {big}: {FILES} files of {SIZE} bytes ...", flush=True)
        data = b.fill(big, FILES, SIZE)
        peaks: dict[str, list[int]] = {big: [], small: []}
        tree: dict[str, list[int]] = {big: [], small: []}
        for i in range(args.runs):
            for name in (small, big):
                b.register(name)
                b.clear_backups()
                m = run_measured([b.exe, "backup-all"], b.env)
                check_ok(m, "nemoclaw backup-all")
                peaks[name].append(m.peak_rss)
                tree[name].append(m.tree_maxrss)
                print(f"  run {i + 1} {name}: {m.seconds:.1f} s, peak RSS {m.peak_rss / 2**20:.1f} MiB "
                      f"(wait4 maxrss {m.tree_maxrss / 2**20:.1f} MiB)", flush=True)
        pb, ps = median(peaks[big]), median(peaks[small])
        print()
        print(f"machine: {machine()}")
        print(f"baseline, stock sandbox (~2 MB):   peak RSS {ps / 2**20:6.1f} MiB")
        print(f"sandbox with {data / 1e6:.0f} MB in {FILES} files: peak RSS {pb / 2**20:6.1f} MiB  "
              f"ratio {pb / ps:.2f}x the baseline; {pb / data * 100:.1f}% of the data size")
        print(f"wait4 maxrss (process or a child): {median(tree[big]) / 2**20:.1f} MiB vs {median(tree[small]) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
