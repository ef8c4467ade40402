"""Install the stand-in programs as small shell launchers with the version baked in.

`exec -a "$0"` keeps the launcher's path as argv0, which is what NemoClaw reads from
/proc/<pid>/cmdline to decide that a pid is a live `openshell-gateway`. Because CPython then
derives its prefix from that argv0, it no longer finds the venv: the launcher sets PYTHONPATH
to the import roots of this interpreter, computed at install time. With every root on
PYTHONPATH, the interpreter runs with `-S` (no `site`): processing the installation's `.pth`
files cost as much as the rest of a CLI call's start-up, and the CLI runs many times a run.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from .versions import VERSION_ENV, Version

PROGRAMS = {"openshell": "nemoclaw_sim.openshell_cli", "openshell-gateway": "nemoclaw_sim.gateway"}


def _interpreter() -> str:
    """The real interpreter binary (never a pyenv shim, which re-execs and drops argv0)."""
    return os.path.realpath(sys.executable)


def _bash() -> str:
    """`exec -a` is a bash builtin feature (dash has no `-a`)."""
    found = shutil.which("bash") or "/bin/bash"
    return os.path.realpath(found)


def _sdk_root() -> str | None:
    """Where NVIDIA's `openshell` SDK distribution is installed (its site-packages), so that it
    comes before any other directory on sys.path holding something named `openshell`."""
    try:
        from importlib.metadata import distribution

        return str(Path(str(distribution("openshell").locate_file(""))).resolve())
    except Exception:  # noqa: BLE001 - not installed: the gateway reports the import error
        return None


def _python_path() -> str:
    roots: list[str] = []
    package_root = str(Path(__file__).resolve().parents[1])
    for entry in [package_root, _sdk_root(), *sys.path]:
        if entry and os.path.isdir(entry) and entry not in roots:
            roots.append(os.path.abspath(entry))
    return os.pathsep.join(roots)


def launcher_text(program: str, version: str) -> str:
    Version(version)  # validate
    module = PROGRAMS[program]
    return (
        f"#!{_bash()}\n"
        f"# {program} {version} — NemoClaw simulator stand-in for NVIDIA OpenShell (nemoclaw-sim install)\n"
        f"{VERSION_ENV}={shlex.quote(version)}\n"
        f"PYTHONPATH={shlex.quote(_python_path())}\n"
        f"export {VERSION_ENV} PYTHONPATH\n"
        f'exec -a "$0" {shlex.quote(_interpreter())} -S -m {module} "$@"\n'
    )


def install_program(bin_dir: Path, program: str, version: str) -> Path:
    """Write (atomically replace) one launcher; replacing it reproduces a swapped binary."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    target = bin_dir / program
    tmp = bin_dir / f".{program}.tmp{os.getpid()}"
    tmp.write_text(launcher_text(program, version))
    tmp.chmod(0o755)
    os.replace(tmp, target)
    return target


def installed_version(path: Path) -> str | None:
    """The release a launcher written by `install_program` reports, or None (missing, not ours)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.startswith(f"{VERSION_ENV}="):
            return shlex.split(line.split("=", 1)[1])[0]
    return None


def process_version(pid: int) -> str | None:
    """The release a running stand-in program reports (its launcher's version in its environment)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    prefix = f"{VERSION_ENV}=".encode()
    return next((e[len(prefix):].decode() for e in environ if e.startswith(prefix)), None)


def install(bin_dir: Path, cli: str | None, gateway: str | None) -> list[Path]:
    written = []
    if cli:
        written.append(install_program(bin_dir, "openshell", cli))
    if gateway:
        written.append(install_program(bin_dir, "openshell-gateway", gateway))
    return written
