"""The journal's cost per state: a workflow of N no-op states run in process with the fsync'ed
journal, against the same run with the journal writing nowhere (the baseline). Prints ours,
the baseline and the difference per state; median of 7 runs.

    .venv/bin/python bench/journal_overhead.py [--states 50] [--home DIR]

--home puts the journal on the file system under test (default: a temp dir).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orchestrator.engine.run as run_mod  # noqa: E402
from orchestrator.engine.journal import Journal  # noqa: E402
from orchestrator.engine.output import Reporter  # noqa: E402
from orchestrator.engine.registry import step  # noqa: E402
from orchestrator.kernel.paths import Paths  # noqa: E402
from orchestrator.engine.loader import load_workflow  # noqa: E402


@step("bench_noop")
def _noop(ctx):  # noqa: ANN001
    """Does nothing."""


def workflow(states: int, where: Path):
    lines = ["name: bench-journal", "summary: N no-op states.", "lock: false", "initial: s0", "states:"]
    for i in range(states):
        lines.append(f"  s{i}: {{do: bench_noop, next: {'s' + str(i + 1) if i + 1 < states else 'done'}}}")
    path = where / "bench-journal.yaml"
    path.write_text("\n".join(lines) + "\n")
    return load_workflow(path, {"bench-journal"})


def timed(spec, home: Path, journal: bool) -> float:
    real = run_mod.Journal
    if not journal:
        run_mod.Journal = lambda path, run_id, warn=None: real(None, run_id, warn=warn)
    try:
        t0 = time.perf_counter()
        result = run_mod.run_workflow(spec, {}, paths=Paths(home), out=Reporter(stdout=io.StringIO(), stderr=io.StringIO()))
        elapsed = time.perf_counter() - t0
    finally:
        run_mod.Journal = real
    assert result.exit_code == 0
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=50)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp)
        spec = workflow(args.states, Path(tmp))
        ours = statistics.median(timed(spec, home, True) for _ in range(args.runs))
        base = statistics.median(timed(spec, home, False) for _ in range(args.runs))
    per = (ours - base) / args.states * 1000
    print(f"journal: {args.states} states, median of {args.runs}")
    print(f"  ours (fsync'ed journal): {ours * 1000:8.1f} ms   baseline (no journal): {base * 1000:8.1f} ms   "
          f"ratio {ours / base:5.2f}x   cost per state: {per:.2f} ms")


if __name__ == "__main__":
    main()
