"""The built-in workflows ship inside the wheel: an installed `nemoclaw` finds them without a
checkout. Builds the wheel, installs it into a fresh venv, runs the CLI from a scratch dir."""

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def installed(tmp_path_factory, monkeypatch) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    dist.mkdir()
    # The project's build backend (PEP 517 `build_wheel`, what `python -m build --wheel` calls),
    # in this process: the test extras carry hatchling.
    from hatchling.build import build_wheel

    monkeypatch.chdir(ROOT)
    wheel = dist / build_wheel(str(dist))
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    # Dependencies (and pip) come from this environment's site-packages (already installed, offline).
    site = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (next((env_dir / "lib").glob("python3*")) / "site-packages" / "deps.pth").write_text(str(site) + "\n")
    # The new venv's own interpreter runs pip, so the package and its `nemoclaw` script land there.
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--no-compile", str(wheel)], check=True, capture_output=True, text=True, timeout=600)
    exe = env_dir / "bin" / "nemoclaw"
    assert exe.read_text().splitlines()[0] == f"#!{env_dir / 'bin' / 'python'}"
    return exe


def _run(exe: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(tmp), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    return subprocess.run([str(exe), *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=120)


def test_installed_wheel_finds_validates_and_runs_its_builtin_workflows(installed, tmp_path):
    r = _run(installed, "workflows", "list", "--json", tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert "backup-all" in rows and rows["backup-all"]["builtin"] and rows["backup-all"]["valid"]
    assert rows["backup-all"]["summary"] == "Back up all sandbox state before upgrade"
    assert "/site-packages/orchestrator/_workflows/" in rows["backup-all"]["path"]
    assert str(ROOT) not in rows["backup-all"]["path"]
    assert all(row["builtin"] and row["valid"] for row in rows.values()), rows
    r = _run(installed, "workflows", "validate", tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(line.rsplit("/", 1)[1] for line in r.stdout.splitlines()) == sorted(f"{n}.yaml" for n in rows)
    # The empty-registry path runs end to end from the wheel, with no OpenShell installed.
    r = _run(installed, "backup-all", tmp=tmp_path)
    assert (r.returncode, r.stdout) == (0, "  No sandboxes registered. Nothing to back up.\n"), r.stderr
