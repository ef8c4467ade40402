"""OpenShell version strings, compared the way upstream does (docs/reference/openshell-versions.md).

OpenShell derives its version from `git describe`: `0.0.111` on a tag, `0.0.112-dev.5+g1a2b3c4`
past one, and prerelease packages carry `0.1.0-pre.3`. CLI and gateway must come from the *same
release*, so any difference at all is drift; there is no compatible range. The release line
(`0.0.x`, `0.1.x`) matters on top of that: peers of different lines cannot be mixed at all, and
a 0.0.x installation's sandboxes cannot be carried over to 0.1.x, only backed up and recreated.
"""

from __future__ import annotations

import re

import attrs

_SEMVER = re.compile(
    r"(?<![0-9.])(?P<major>[0-9]+)\.(?P<minor>[0-9]+)\.(?P<patch>[0-9]+)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


@attrs.frozen
class OpenShellVersion:
    """One parsed version; `text` is the canonical string (no program name, no leading `v`)."""

    major: int
    minor: int
    patch: int
    pre: str | None = None
    build: str | None = None

    @property
    def text(self) -> str:
        out = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            out += f"-{self.pre}"
        if self.build:
            out += f"+{self.build}"
        return out

    @property
    def line(self) -> str:
        """The release line, `0.0.x` or `0.1.x`: major.minor with the patch replaced by `x`."""
        return f"{self.major}.{self.minor}.x"

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __str__(self) -> str:
        return self.text


def parse_openshell_version(text: str | None) -> OpenShellVersion | None:
    """The first version in `text` (`openshell 0.0.44`, `openshell-gateway 0.1.0-pre.3`,
    `0.0.112-dev.5+g1a2b3c4`, `v0.1.10`), or None."""
    m = _SEMVER.search(text or "")
    if not m:
        return None
    return OpenShellVersion(int(m["major"]), int(m["minor"]), int(m["patch"]), m["pre"], m["build"])


def version_text(text: str | None) -> str | None:
    """The canonical version string found in `text`, or None (what drift checks compare)."""
    v = parse_openshell_version(text)
    return v.text if v else None


def same_release(a: str | None, b: str | None) -> bool | None:
    """True when both name exactly the same release; None when either is unknown."""
    va, vb = parse_openshell_version(a), parse_openshell_version(b)
    if va is None or vb is None:
        return None
    return va == vb


def cross_line(a: str | None, b: str | None) -> bool:
    """Both versions are known and on different release lines (e.g. 0.0.116 and 0.1.5)."""
    va, vb = parse_openshell_version(a), parse_openshell_version(b)
    return va is not None and vb is not None and va.line != vb.line


def newer_line(a: str, b: str) -> str:
    """The later of the two versions' release lines (`0.1.x` for 0.0.116 vs 0.1.5)."""
    va, vb = parse_openshell_version(a), parse_openshell_version(b)
    assert va is not None and vb is not None
    return max(va, vb, key=lambda v: (v.major, v.minor)).line


def cross_line_message(installed: str, running: str) -> str:
    """The one line the diagnosis adds when installed and running OpenShell are on different lines."""
    vi, vr = parse_openshell_version(installed), parse_openshell_version(running)
    assert vi is not None and vr is not None
    old = min(vi, vr, key=lambda v: (v.major, v.minor)).line
    return (
        f"  Installed OpenShell ({vi.line}) and the running gateway ({vr.line}) are on different release lines:"
        f" such a gateway cannot serve these sandboxes; back up {old} sandboxes and recreate them on the"
        f" {newer_line(installed, running)} line."
    )
