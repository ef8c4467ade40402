"""Benchmark 3: `nemoclaw backup-all` of many sandboxes at several `--parallel` values, and the
default the machine chooses (store/parallelism.py), against `--parallel 1` (the baseline). Two
cases: 8 sandboxes of 64 MiB (128 files of 512 KiB) and 32 sandboxes of 4 MiB (64 files of
64 KiB).

    DOCKER_HOST=unix:///tmp/nemoclaw-docker/docker.sock .venv/bin/python bench/backup_parallel.py [--runs 3] [--cases 8x64,32x4] [--values 1,2,4,8]

Runs alternate over the values so that a noisy neighbour hits all; medians are reported, for
the whole command and for its snapshot+commit states (from the run's own log). The default is
run with no `--parallel` at all.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import check_ok, host, machine, median, run_measured

CASES = {"8x64": (8, 128, 512 * 1024), "32x4": (32, 64, 64 * 1024)}  # sandboxes, files, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cases", default="8x64,32x4")
    ap.add_argument("--values", default="1,2,4,8")
    ap.add_argument("--replay-openshell", action="store_true",
                    help="answer openshell calls in a few ms, as the native CLI does (bench/_common.py)")
    args = ap.parse_args()
    values: list[int | None] = [int(v) for v in args.values.split(",")] + [None]
    report = []
    for case in args.cases.split(","):
        sandboxes, files, size = CASES[case]
        with host(f"parallel-{case}") as b:
            from orchestrator.store.parallelism import default_parallel

            chosen = default_parallel(b.home / ".nemoclaw" / "rebuild-backups")
            names = [b.add(f"bench{b.tag}-{i:02d}") for i in range(sandboxes)]
            print(f"[{case}] filling {sandboxes} sandboxes with {files} files of {size} bytes ...", flush=True)
            with ThreadPoolExecutor(max_workers=2) as pool:
                data = sum(pool.map(lambda n: b.fill(n, files, size), names))
            b.register(*names)
            if args.replay_openshell:
                b.replay_openshell()
            times: dict[int | None, list[float]] = {v: [] for v in values}
            states: dict[int | None, list[float]] = {v: [] for v in values}
            for i in range(args.runs):
                for p in values:
                    b.clear_backups()
                    argv = [b.exe, "backup-all", *(["--parallel", str(p)] if p else [])]
                    m = run_measured(argv, b.env)
                    check_ok(m, f"backup-all --parallel {p or 'default'}")
                    d = b.last_run_durations()
                    times[p].append(m.seconds)
                    states[p].append(d["snapshot"] + d["commit"])
                    print(f"  run {i + 1} --parallel {p or f'default ({chosen})'}: {m.seconds:.2f} s (snapshot "
                          f"{d['snapshot']:.2f} s + commit {d['commit']:.2f} s)", flush=True)
            report.append((case, sandboxes, data, chosen, {v: (median(times[v]), median(states[v])) for v in values}))
    print()
    print(f"machine: {machine()}")
    print(f"medians of {args.runs} runs" + (", openshell calls replayed" if args.replay_openshell else ""))
    for case, sandboxes, data, chosen, med in report:
        t1 = med[1][0] if 1 in med else None
        print(f"[{case}] {sandboxes} sandboxes, {data / 1e6:.0f} MB in total; the default here is --parallel {chosen}")
        for v, (t, st) in med.items():
            label = f"default ({chosen})" if v is None else str(v)
            speed = f"  {t1 / t:.2f}x --parallel 1" if t1 else ""
            print(f"  --parallel {label:12s} {t:6.2f} s  (snapshot+commit {st:6.2f} s){speed}")


if __name__ == "__main__":
    main()
