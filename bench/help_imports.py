"""Benchmark 5b: the time `nemoclaw --help` spends importing (`python -X importtime`, the sum of
the top-level imports, the interpreter's own start-up imports included), for one or more source
trees, runs alternating between them so a noisy neighbour hits all alike. No Docker needed.

    .venv/bin/python bench/help_imports.py [--runs 11] [TREE ...]   # TREE: a checkout (default: this one)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import machine, median, top_level_import_seconds

HERE = Path(__file__).resolve().parents[1]
MAIN = "import sys; sys.argv = ['nemoclaw', *sys.argv[1:]]; from orchestrator.cli import main; main()"


def import_seconds(tree: Path, args: list[str], home: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree), "HOME": home, "PATH": "/usr/bin:/bin"}
    # cwd: the scratch home, since `-c` puts the working directory first on sys.path.
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", MAIN, *args], env=env, cwd=home,
                         capture_output=True, text=True)
    return top_level_import_seconds(out.stderr)


def interpreter_seconds() -> float:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True)
    return top_level_import_seconds(out.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("trees", nargs="*", type=Path, default=[HERE])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        samples: dict[Path, list[float]] = {t: [] for t in args.trees}
        base = []
        for _ in range(args.runs):
            base.append(interpreter_seconds())
            for t in args.trees:
                samples[t].append(import_seconds(t, ["--help"], home))
    print(f"machine: {machine()}")
    print(f"medians of {args.runs} runs (min in brackets)")
    print(f"python -c pass imports: {median(base):6.3f} s  [{min(base):.3f}]")
    for t, s in samples.items():
        print(f"nemoclaw --help imports, {t}: {median(s):6.3f} s  [{min(s):.3f}]")


if __name__ == "__main__":
    main()
