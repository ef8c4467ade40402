"""The built-in workflows ship inside the wheel: an installed `nemoclaw` finds them without a
checkout. Builds the wheel, installs it into a fresh venv, runs the CLI from a scratch dir.
The OpenShell stand-in is its own distribution (sim/): the product wheel carries none of it."""

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _build(src: Path, dist: Path) -> Path:
    """The project's build backend (PEP 517 `build_wheel`, what `python -m build --wheel` calls),
    in this process: the test extras carry hatchling, so no isolated build environment."""
    from hatchling.build import build_wheel

    dist.mkdir(parents=True, exist_ok=True)
    here = os.getcwd()
    os.chdir(src)
    try:
        return dist / build_wheel(str(dist))
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build(ROOT, tmp_path_factory.mktemp("wheel") / "dist")


def _entry_points(z: zipfile.ZipFile) -> str:
    [name] = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
    return z.read(name).decode()


def test_the_product_wheel_has_no_stand_in(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = _entry_points(z)
    assert "orchestrator/cli/__init__.py" in names and "orchestrator/adapters/agents/openclaw.yaml" in names
    assert [n for n in names if "sim" in n.split("/")[0] or n.startswith("orchestrator/sim/")] == []
    assert "nemoclaw = orchestrator.cli:main" in entry_points
    assert "nemoclaw-sim" not in entry_points and "nemoclaw_sim" not in entry_points


def test_the_stand_in_wheel_builds_apart(tmp_path):
    sim_wheel = _build(ROOT / "sim", tmp_path / "dist")
    with zipfile.ZipFile(sim_wheel) as z:
        names = z.namelist()
        entry_points = _entry_points(z)
    assert sim_wheel.name.startswith("nemoclaw_sim-")
    assert "nemoclaw_sim/cli.py" in names and "nemoclaw_sim/gateway.py" in names
    assert [n for n in names if n.startswith("orchestrator/")] == []
    assert "nemoclaw-sim = nemoclaw_sim.cli:main" in entry_points


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel) -> Path:
    tmp = tmp_path_factory.mktemp("venv")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    # Dependencies (and pip) come from this environment's site-packages (already installed, offline);
    # the new venv's own interpreter runs pip, so the package and its `nemoclaw` script land there.
    site = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (next((env_dir / "lib").glob("python3*")) / "site-packages" / "deps.pth").write_text(str(site) + "\n")
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--no-compile", str(wheel)], check=True, capture_output=True, text=True, timeout=600)
    exe = env_dir / "bin" / "nemoclaw"
    assert exe.read_text().splitlines()[0] == f"#!{env_dir / 'bin' / 'python'}"
    return exe


def _run(exe: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(tmp), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    return subprocess.run([str(exe), *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=120)


def test_installed_wheel_finds_builtin_workflows(installed, tmp_path):
    r = _run(installed, "workflows", "list", "--json", tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    import json

    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert "backup-all" in rows and rows["backup-all"]["builtin"] and rows["backup-all"]["valid"]
    assert "/site-packages/orchestrator/_workflows/" in rows["backup-all"]["path"]
    assert str(ROOT) not in rows["backup-all"]["path"]


def test_installed_wheel_help_validate_graph(installed, tmp_path):
    r = _run(installed, "--help", tmp=tmp_path)
    assert r.returncode == 0 and "backup-all" in r.stdout and "workflows" in r.stdout
    r = _run(installed, "backup-all", "--help", tmp=tmp_path)
    assert r.returncode == 0 and "Back up all sandbox state before upgrade" in r.stdout
    r = _run(installed, "workflows", "validate", tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _run(installed, "workflows", "graph", "backup-all", tmp=tmp_path)
    assert r.returncode == 0 and "preflight --> refused: refuse" in r.stdout
    # The empty-registry path runs end to end from the wheel, with no OpenShell installed.
    r = _run(installed, "backup-all", tmp=tmp_path)
    assert (r.returncode, r.stdout) == (0, "  No sandboxes registered. Nothing to back up.\n"), r.stderr
