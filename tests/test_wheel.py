"""The built-in workflows ship inside the wheel: an installed `nemoclaw` finds them without a
checkout. Builds the wheel, installs it into a fresh venv, runs the CLI from a scratch dir.
The OpenShell stand-in is its own distribution (sim/): the product wheel carries none of it."""

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build(src: Path, dist: Path) -> Path:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)],
                   check=True, capture_output=True, text=True, timeout=600)
    [wheel] = dist.glob("*.whl")
    return wheel


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
    venv.EnvBuilder(with_pip=True).create(env_dir)
    # Dependencies come from this environment's site-packages (already installed, offline).
    site = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (next((env_dir / "lib").glob("python3*")) / "site-packages" / "deps.pth").write_text(str(site) + "\n")
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=600)
    return env_dir / "bin" / "nemoclaw"


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
