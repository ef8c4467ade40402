"""The step registry: signatures known without the steps' code, a step's module imported when
the step is first looked up to run, and a declaration that cannot drift from its module."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orchestrator.engine import registry
from orchestrator.engine.registry import declare, get_step, implements, signatures


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry's tables as copies, so what a test declares is gone after it."""
    for table in ("_SIGNATURES", "_MODULES", "_IMPLS"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))


def test_every_declared_built_in_step_is_implemented_by_its_module():
    signatures()  # loads the step libraries
    built_in = {name: module for name, module in registry._MODULES.items() if module.startswith("orchestrator.steps.")}
    assert len(built_in) == 29  # 18 + replicate_backups, pull_backup, return_to_stopped + the 8 of migrate-openshell
    for name, module in built_in.items():
        step = get_step(name)
        assert step is not None and step.func.__module__ == module, name
        assert step.signature == signatures()[name]


LAZY_MODULE = """
from orchestrator.engine.registry import implements


@implements("t_lazy")
def lazy(ctx):
    return "empty"
"""


def test_a_declared_step_is_imported_when_first_looked_up(scratch_registry, monkeypatch, tmp_path):
    (tmp_path / "t_lazy_steps.py").write_text(LAZY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "t_lazy_steps", None)  # `del` at the end: gone after the test
    del sys.modules["t_lazy_steps"]
    declare("t_lazy", "t_lazy_steps", outcomes=("next", "empty"), writes=("registry",))
    assert signatures()["t_lazy"].outcomes == frozenset({"next", "empty"})
    assert "t_lazy_steps" not in sys.modules  # validation needs the signature only
    step = get_step("t_lazy")
    assert "t_lazy_steps" in sys.modules
    assert step.func(None) == "empty" and step.writes == frozenset({"registry"}) and step.advice is None
    assert get_step("t_lazy").func is step.func


def test_a_declaration_and_its_module_cannot_drift(scratch_registry, monkeypatch):
    def func(ctx):
        return None

    func.__module__ = "somewhere.else"
    with pytest.raises(ValueError, match="step 't_nowhere' is not declared, not in somewhere.else"):
        implements("t_nowhere")(func)
    declare("t_here", "tests.support.engine_steps")
    with pytest.raises(ValueError, match="step 't_here' is declared in module tests.support.engine_steps, "
                                         "not in somewhere.else"):
        implements("t_here")(func)
    # A module that does not implement what it is declared for fails the lookup, by name.
    with pytest.raises(LookupError, match="step 't_here' is declared with module tests.support.engine_steps, "
                                          "which does not implement it"):
        get_step("t_here")
    assert get_step("t_unknown_step") is None


def test_a_refused_run_imports_only_the_steps_it_entered(tmp_path):
    """`backup-all` refused at its preflight (no openshell installed): the registry and
    preflight steps' modules are imported, none of the backup, rebuild or upgrade code."""
    home = tmp_path / "home"
    (home / ".nemoclaw").mkdir(parents=True)
    (home / ".nemoclaw" / "sandboxes.json").write_text(json.dumps(
        {"sandboxes": {"alpha": {"name": "alpha", "agent": "openclaw"}}, "defaultSandbox": "alpha"}))
    code = ("import sys\nsys.argv = ['nemoclaw', 'backup-all']\nfrom orchestrator.cli import main\n"
            "try:\n    main()\nfinally:\n"
            "    print('\\n'.join(sorted(sys.modules)), file=sys.stdout)\n")
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=env)
    assert (res.returncode, res.stderr) == (
        1, "openshell CLI not found. Install OpenShell before using sandbox commands.\n"), res.stderr
    loaded = set(res.stdout.split())
    steps = sorted(m for m in loaded if m.startswith("orchestrator.steps."))
    assert "orchestrator.steps.registry" in steps and "orchestrator.steps.preflight" in steps
    for unused in ("backup", "rebuild", "upgrade", "sandbox_list", "control"):
        assert f"orchestrator.steps.{unused}" not in steps, steps
    assert "orchestrator.store.tarstream" not in loaded and "docker" not in loaded
