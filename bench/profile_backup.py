"""Profile `nemoclaw backup-all` and `nemoclaw backups restore` of one sandbox holding 250 MiB in
2,000 files, with py-spy (sampling every thread of the process, native frames off).

    DOCKER_HOST=unix:///tmp/nemoclaw-docker/docker.sock .venv/bin/python bench/profile_backup.py [--top 15]

Needs py-spy (`pip install py-spy`) and ptrace rights (root). Prints, for each command, the
functions with the most samples on top of the stack (self) and in the stack (total).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import host, machine

FILES, SIZE = 2000, 128 * 1024  # 2,000 files of 128 KiB = 250 MiB


def profile(argv: list[str], env: dict[str, str], out: Path, rate: int) -> None:
    spy = shutil.which("py-spy") or str(Path(__file__).resolve().parents[1] / ".venv/bin/py-spy")
    subprocess.run([spy, "record", "--format", "raw", "--rate", str(rate), "--threads", "-o", str(out), "--", *argv],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(raw: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        count = int(n)
        frames = [f for f in stack.split(";") if not f.startswith("thread")]
        if not frames:
            continue
        samples += count
        own[_short(frames[-1])] += count
        for f in set(map(_short, frames)):
            total[f] += count
    print(f"  {samples} samples (all threads)")
    print("  self%  function")
    for f, n in own.most_common(top):
        print(f"  {100 * n / samples:5.1f}  {f}")
    print("  total%  function")
    for f, n in total.most_common(top + 10)[:top + 10]:
        print(f"  {100 * n / samples:6.1f}  {f}")


def _short(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit("/", 1)[-1].split(":")[0]
    return f"{name} ({file})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--rate", type=int, default=250)
    args = ap.parse_args()
    with host("profile") as b, tempfile.TemporaryDirectory() as tmp:
        name = b.add(f"bench{b.tag}-prof")
        data = b.fill(name, FILES, SIZE)
        b.register(name)
        print(f"machine: {machine()}")
        print(f"data: {data / 2**20:.0f} MiB in {FILES} files")
        raw = Path(tmp) / "backup.txt"
        profile([b.exe, "backup-all"], b.env, raw, args.rate)
        print("\n`nemoclaw backup-all`:")
        report(raw, args.top)
        raw = Path(tmp) / "restore.txt"
        profile([b.exe, "backups", "restore", name], b.env, raw, args.rate)
        print(f"\n`nemoclaw backups restore {name}`:")
        report(raw, args.top)


if __name__ == "__main__":
    main()
