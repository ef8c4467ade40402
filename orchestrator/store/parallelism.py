"""How many sandboxes `backup-all` reads at once when `--parallel` is not given: from the
machine (bench/README.md, "Many sandboxes", has the figures behind it).

One sandbox's capture already keeps about two cores busy (the engine's tar, our reader with its
hash-and-write, the kernel's file writes), but a small sandbox spends most of its time in fixed
round trips (inspect, pause, the deep-path probe, unpause), which overlap well: on the 2-core
VM, 8 x 64 MiB and 32 x 4 MiB were fastest at 8 (2.4x and 1.9x --parallel 1; 4: 1.8x and 1.7x).
So: four captures per usable core, at least 2 and at most 8; on a rotational disk 2 (concurrent streams
of files make a spinning disk seek between them); a virtual disk's flag is not believed.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_parallel"]

_MIN, _MAX, _PER_CORE, _ROTATIONAL = 2, 8, 4, 2


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def is_rotational(path: Path) -> bool | None:
    """Whether the block device holding `path` spins (sysfs `queue/rotational`); None when
    that cannot be told (a virtual or network filesystem, no sysfs)."""
    try:
        dev = os.stat(_existing(Path(path))).st_dev
        block = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve()
        if "/virtio" in str(block) or "/xen" in str(block):
            return None  # a virtual disk says 1 whatever backs it (this VM's virtio disk does)
        for d in (block, block.parent):  # a partition's queue is its disk's
            flag = d / "queue" / "rotational"
            if flag.exists():
                return flag.read_text().strip() == "1"
    except OSError:
        pass
    return None


def _existing(p: Path) -> Path:
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def default_parallel(backups_root: Path, *, cores: int | None = None, rotational: bool | None = None) -> int:
    """The default of backup-all's `--parallel` for backups written below `backups_root`."""
    if rotational is None:
        rotational = is_rotational(backups_root)
    if rotational:
        return _ROTATIONAL
    n = usable_cores() if cores is None else cores
    return max(_MIN, min(_MAX, _PER_CORE * n))
