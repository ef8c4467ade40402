"""The import layers of the design (pyproject's [tool.importlinter]) hold, and the check really
fails when a module imports the wrong way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'sim'}"}
    return subprocess.run([LINT, "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def _copy_tree(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "orchestrator", dest / "orchestrator", ignore=ignore)
    shutil.copytree(ROOT / "sim" / "nemoclaw_sim", dest / "sim" / "nemoclaw_sim", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_import_contracts_hold() -> None:
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_a_store_module_importing_the_engine_breaks_the_contract(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    lock = root / "orchestrator" / "store" / "lock.py"
    lock.write_text(lock.read_text() + "\nimport orchestrator.engine.run  # the wrong way\n")
    res = _lint(root)
    assert res.returncode != 0
    assert "orchestrator.store.lock -> orchestrator.engine.run" in res.stdout, res.stdout


def test_the_stand_in_importing_the_orchestrator_breaks_the_contract(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    term = root / "sim" / "nemoclaw_sim" / "term.py"
    term.write_text(term.read_text() + "\nimport orchestrator.kernel.paths  # the wrong way\n")
    res = _lint(root)
    assert res.returncode != 0
    assert "nemoclaw_sim.term -> orchestrator.kernel.paths" in res.stdout, res.stdout
