"""The package type-checks (pyproject's [tool.mypy]: strict for the kernel, the workflow language,
the engine and the store; standard elsewhere), and the check really fails on a type error.

mypy keeps its cache inside .venv (beside the interpreter that runs it, so a fresh .venv starts
cold and an old cache never outlives the mypy that wrote it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(sys.prefix) / "mypy-cache"


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    """mypy as .ci/run runs it: the project's configuration, on the package (or on `args`)."""
    env = {**os.environ, "MYPY_FORCE_COLOR": "0", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", str(CACHE), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_the_package_type_checks() -> None:
    res = _mypy()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Success: no issues found" in res.stdout, res.stdout


def test_a_type_error_fails_the_check(tmp_path: Path) -> None:
    """A caller handing the kernel the wrong type: mypy names the line (the package itself comes
    from the cache the run above wrote; the caller's first line makes it new to that cache)."""
    caller = tmp_path / "caller.py"
    caller.write_text(f"# {tmp_path}\nfrom orchestrator.kernel.sizes import human_size\nhuman_size('12 MB')\n")
    res = _mypy(str(caller))
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"{caller}:3: error:" in res.stdout and "[arg-type]" in res.stdout, res.stdout


def test_strict_where_declared_standard_elsewhere(tmp_path: Path) -> None:
    """The same unannotated function in the kernel (strict) and in a step module (standard), read
    through --shadow-file in place of the real files: only the kernel's is an error."""
    shadows = []
    for module in ("orchestrator/kernel/clock.py", "orchestrator/steps/_kill_points.py"):
        shadow = tmp_path / module.replace("/", "_")
        shadow.write_text((ROOT / module).read_text() + "\n\ndef _untyped(n):\n    return n\n")
        shadows += ["--shadow-file", module, str(shadow)]
    res = _mypy(*shadows)
    assert res.returncode == 1, res.stdout + res.stderr
    errors = [line for line in res.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and errors[0].startswith("orchestrator/kernel/clock.py:"), res.stdout
    assert "[no-untyped-def]" in errors[0], res.stdout
