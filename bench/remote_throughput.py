"""6: `nemoclaw backups push` and `backups pull` against restic run by hand on the same
directory (`restic backup .` into a fresh repository; `restic restore latest --target`), side by
side: ours, the baseline, the ratio. A local repository, no Docker (the backup is made with the
store's own archive code, as backup-all writes it).

    .venv/bin/python bench/remote_throughput.py [--runs 3] [--mb 200] [--files 400]

What ours does on top (bench/README.md, "Off-host copies", says what each part buys):
push reads the local store (every manifest) and lists the repository's snapshots (skip by
digest), with restic's backup started beside the listing; pull lists the snapshots while
restic restores into staging (with the disk write-back started as restic writes), then reads
every file once to hash it against the manifest, fsyncs and renames it into place. Every
restic command pays its key derivation (scrypt, ~0.5 s here): ours run two at once, the
baseline one. The load average is printed before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.adapters.agents.definitions import load_agent  # noqa: E402
from orchestrator.store import extract_stream  # noqa: E402
from orchestrator.store.archive import pack_directory  # noqa: E402
from orchestrator.store.capture import Capture, build_manifest  # noqa: E402
from orchestrator.store.manifest import write_manifest  # noqa: E402

NEMOCLAW = str(ROOT / ".venv" / "bin" / "nemoclaw")
TS = "2026-05-01T00-00-00-000Z"


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def make_backup(home: Path, mb: int, nfiles: int) -> Path:
    src = home.parent / "src"
    per = mb * 1_000_000 // nfiles
    for i in range(nfiles):
        p = src / "workspace" / f"d{i % 20}" / f"f{i}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(per))
    dest = home / ".nemoclaw" / "rebuild-backups" / "alpha" / TS
    dest.mkdir(parents=True)
    res = extract_stream(pack_directory(src, ["workspace"]), dest)
    agent = load_agent("openclaw")
    cap = Capture(state_dirs=list(agent.state_dirs), backed_up_dirs=["workspace"])
    cap.archive.merge(res)
    write_manifest(dest, build_manifest(cap, agent, sandbox="alpha", timestamp=TS, backup_path=dest))
    return dest


CPU: dict[str, list[float]] = {}
"""CPU seconds (user + system) of each command and everything it started, by label: on a
shared machine the wall times follow the load; the CPU a command needs does much less."""


def run(argv: list[str], env: dict[str, str], cwd: Path | None = None, label: str = "") -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    if label:
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        CPU.setdefault(label, []).append(cpu)
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--files", type=int, default=400)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="nemoclaw-bench-remote-"))
    try:
        home = scratch / "home"
        backup = make_backup(home, args.mb, args.files)
        (scratch / "pw").write_text("bench-password\n")
        base = {**os.environ, "RESTIC_PASSWORD_FILE": str(scratch / "pw"), "RESTIC_CACHE_DIR": str(scratch / "cache"),
                "NEMOCLAW_BACKUP_HOST": "bench"}
        times: dict[str, list[float]] = {k: [] for k in ("push", "backup", "pull", "restore", "restore+sync")}
        load_before = os.getloadavg()
        for i in range(args.runs):
            ours_repo, by_hand = scratch / f"ours-{i}", scratch / f"hand-{i}"
            ours = {**base, "HOME": str(home), "NEMOCLAW_BACKUP_REPOSITORY": str(ours_repo)}
            hand = {**base, "RESTIC_REPOSITORY": str(by_hand)}
            run([NEMOCLAW, "backups", "init-remote"], ours)
            run(["restic", "init"], hand)
            times["push"].append(run([NEMOCLAW, "backups", "push"], ours, label="push"))
            times["backup"].append(run(["restic", "--json", "backup", "--host", "bench", "--tag", "nemoclaw", "."],
                                       hand, cwd=backup, label="backup"))
            new_home = scratch / f"pull-{i}"
            times["pull"].append(run([NEMOCLAW, "backups", "pull", "alpha"], {**ours, "HOME": str(new_home)}, label="pull"))
            target = scratch / f"restore-{i}"
            times["restore"].append(run(["restic", "restore", "latest", "--target", str(target)], hand, label="restore"))
            # The same, made durable as a pull's commit must be (restic's restore leaves its data
            # in the page cache): syncfs of the target's filesystem, as the commit's fsync does.
            synced = scratch / f"restore-synced-{i}"
            times["restore+sync"].append(run(["sh", "-c", f'restic restore latest --target "{synced}" && sync -f "{synced}"'],
                                             hand, label="restore+sync"))
            for p in (ours_repo, by_hand, new_home, target, synced):
                shutil.rmtree(p)
        size = sum(f.stat().st_size for f in backup.rglob("*") if f.is_file())
        load_after = os.getloadavg()
        print(f"{size / 1e6:.0f} MB in {args.files + 1} files, {args.runs} runs, medians, local repository; "
              f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after ({os.cpu_count()} cores)")
        print(f"{'what':<10} {'ours':>8} {'baseline':>10} {'ratio':>6}")
        for ours_k, base_k, label in (("push", "backup", "push"), ("pull", "restore", "pull"),
                                      ("pull", "restore+sync", "pull")):
            o, b = median(times[ours_k]), median(times[base_k])
            print(f"{label:<10} {o:>7.2f}s {b:>9.2f}s {o / b:>5.2f}x   (restic {base_k} by hand)")
        print("(restore+sync: restic restore, then `sync -f` of the target: the durability a commit needs)")
        for ours_k, base_k in (("push", "backup"), ("pull", "restore")):
            o, b = median(CPU[ours_k]), median(CPU[base_k])
            print(f"CPU {ours_k:<6} {o:>7.2f}s {b:>9.2f}s {o / b:>5.2f}x   (user+system of everything each started)")
        print("all runs:", {k: [round(x, 2) for x in v] for k, v in times.items()})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
