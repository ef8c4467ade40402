"""The one way a size is shown on screen: binary units (B, KiB, MiB, GiB, TiB), one decimal."""

from __future__ import annotations


def human_size(n: int) -> str:
    """`512 B`, `1.5 KiB`, `64.0 MiB`: what every message, table and progress bar prints."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
