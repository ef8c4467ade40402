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


# The installed `nemoclaw` script, run for several commands in one start of the installed
# interpreter (its shebang names it, checked above): each command in a forked child running the
# script file itself, so every command is its own process with its own exit code and streams.
# The modules the commands need are imported once, before the children are forked.
MANY = """
import json, os, runpy, sys
exe, commands = sys.argv[1], json.loads(sys.argv[2])
import orchestrator.cli, orchestrator.cli.workflows, orchestrator.engine.loader, orchestrator.engine.run
for name in ("orchestrator.cli", "orchestrator.engine.run"):
    assert "/site-packages/orchestrator/" in sys.modules[name].__file__, sys.modules[name].__file__
results = []
for argv in commands:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        sys.argv = [exe, *argv]
        code = 0
        try:
            runpy.run_path(exe, run_name="__main__")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    os.close(out_w)
    os.close(err_w)
    with open(out_r) as o, open(err_r) as e:
        out, err = o.read(), e.read()
    results.append([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out, err])
print(json.dumps(results))
"""

COMMANDS = {
    "list": ["workflows", "list", "--json"],
    "help": ["--help"],
    "backup-help": ["backup-all", "--help"],
    "validate": ["workflows", "validate"],
    "graph": ["workflows", "graph", "backup-all"],
    "backup": ["backup-all"],
}


@pytest.fixture(scope="module")
def ran(installed, tmp_path_factory) -> dict[str, tuple[int, str, str]]:
    """`nemoclaw ARGV` for each of COMMANDS, from a scratch HOME and working directory."""
    import json

    tmp = tmp_path_factory.mktemp("run")
    env = {"HOME": str(tmp), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    r = subprocess.run([str(installed.with_name("python")), "-c", MANY, str(installed), json.dumps(list(COMMANDS.values()))],
                       cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return {name: tuple(res) for name, res in zip(COMMANDS, json.loads(r.stdout))}


def test_installed_wheel_finds_builtin_workflows(ran):
    import json

    code, out, err = ran["list"]
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert "backup-all" in rows and rows["backup-all"]["builtin"] and rows["backup-all"]["valid"]
    assert "/site-packages/orchestrator/_workflows/" in rows["backup-all"]["path"]
    assert str(ROOT) not in rows["backup-all"]["path"]


def test_installed_wheel_help_validate_graph(ran):
    helped, backup_help, validated, graph, backup = (ran[n] for n in ("help", "backup-help", "validate", "graph", "backup"))
    assert helped[0] == 0 and "backup-all" in helped[1] and "workflows" in helped[1]
    assert backup_help[0] == 0 and "Back up all sandbox state before upgrade" in backup_help[1]
    assert validated[0] == 0, validated[2]
    assert graph[0] == 0 and "preflight --> refused: refuse" in graph[1]
    # The empty-registry path runs end to end from the wheel, with no OpenShell installed.
    assert (backup[0], backup[1]) == (0, "  No sandboxes registered. Nothing to back up.\n"), backup[2]
