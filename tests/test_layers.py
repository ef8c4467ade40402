"""The import layers of the design (pyproject's [tool.importlinter]) hold, and the check really
fails when a module imports the wrong way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


WRONG_WAY = [
    ("orchestrator/store/lock.py", "orchestrator.engine.run"),  # the store imports the engine
    ("orchestrator/adapters/nemoclaw_registry.py", "orchestrator.steps.facts"),  # an adapter imports a step
    ("orchestrator/engine/run.py", "orchestrator.adapters.openshell.cli"),  # the engine imports an adapter
    ("orchestrator/kernel/paths.py", "orchestrator.workflow.spec"),  # the kernel imports the language
    ("sim/nemoclaw_sim/term.py", "orchestrator.kernel.paths"),  # the stand-in imports the orchestrator
    ("orchestrator/store/restore.py", "orchestrator.adapters.agents.definitions"),  # the store imports an adapter
]


def test_every_wrong_way_import_breaks_the_contract(tmp_path: Path) -> None:
    """One copied tree holding all the wrong-way imports, one lint run: each of them is named
    as a broken import (lint-imports lists every direct import that breaks a contract), and
    each of the three contracts is broken by at least one of them."""
    root = _copy_tree(tmp_path)
    for module, imported in WRONG_WAY:
        path = root / module
        path.write_text(path.read_text() + f"\nimport {imported}  # the wrong way\n")
    res = _lint(root)
    assert res.returncode != 0
    for module, imported in WRONG_WAY:
        importer = module.removeprefix("sim/").removesuffix(".py").replace("/", ".")
        assert f"{importer} -> {imported} (l." in res.stdout, (importer, imported, res.stdout)
    assert "Contracts: 0 kept, 3 broken." in res.stdout, res.stdout


def test_help_loads_neither_the_step_library_nor_the_store(tmp_path: Path) -> None:
    """`nemoclaw --help` imports the CLI and the workflow finder, nothing below them; YAML only
    while a workflow file's summary is not in the cache (workflow/summaries.py): the second
    --help prints the same, without PyYAML."""
    code = ("import sys\nsys.argv = ['nemoclaw', '--help']\nfrom orchestrator.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                           env={**os.environ, "HOME": str(tmp_path)}) for _ in range(2)]
    for res in runs:
        assert res.returncode == 0, res.stdout + res.stderr
    assert "backup-all" in runs[0].stdout and "workflows" in runs[0].stdout
    assert runs[1].stdout == runs[0].stdout
    first, second = (set(res.stderr.split()) for res in runs)
    assert "yaml" in first and "yaml" not in second
    for loaded in (first, second):
        assert "orchestrator.cli.root" in loaded and "orchestrator.workflow.discover" in loaded
        heavy = ("orchestrator.steps", "orchestrator.engine", "orchestrator.store", "orchestrator.adapters",
                 "orchestrator.cli.backups", "orchestrator.cli.workflow_command", "attrs", "cattrs", "docker", "rich",
                 "transitions", "tenacity")
        assert sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in heavy)) == []


def test_no_module_imports_one_that_imports_it_back() -> None:
    """No import cycle, lazy imports included (grimp sees imports inside functions too): e.g.
    engine/run.py and engine/resume.py share the state loop of engine/drive.py, and the loop
    gets the child resume passed in."""
    import grimp

    graph = grimp.build_graph("orchestrator", cache_dir=None)
    modules = sorted(graph.modules)
    cycles = [(a, b) for i, a in enumerate(modules) for b in modules[i + 1:]
              if not b.startswith(a + ".") and graph.chain_exists(a, b) and graph.chain_exists(b, a)]
    assert cycles == []
