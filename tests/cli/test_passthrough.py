"""Living beside the real NemoClaw CLI (cli/dispatch.py, docs/reference/nemoclaw-cli.md): every
command line that is not ours is exec'ed into the real CLI unchanged, nothing of ours added;
`nemoclaw <name> rebuild` is ours; 127 when there is no real CLI. The program is run as a real
process; the "real CLI" is a shell script that reports what it got."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli.dispatch import route
from tests.support.cli import NEMOCLAW

UPSTREAM = """#!/bin/sh
for a in "$@"; do printf '<%s>\\n' "$a"; done
printf 'stdin:'; cat
printf 'upstream says no\\n' >&2
touch "$HOME/upstream-ran"
exit 37
"""


@pytest.fixture
def host(tmp_path):
    """A HOME, our program first on PATH (by a link, as an install puts it), the real CLI later."""
    home = tmp_path / "home"
    ours, theirs = tmp_path / "ours-bin", tmp_path / "npm-bin"
    for d in (home, ours, theirs):
        d.mkdir()
    (ours / "nemoclaw").symlink_to(NEMOCLAW)
    real = theirs / "nemoclaw"
    real.write_text(UPSTREAM)
    real.chmod(0o755)
    env = {"HOME": str(home), "PATH": f"{ours}:{theirs}:/usr/bin:/bin", "NO_COLOR": "1"}
    return home, ours, real, env


def run(argv, env, stdin=""):
    return subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=60)


def test_a_command_that_is_not_ours_is_the_real_clis_with_its_argv_streams_and_exit_code(host):
    home, ours, real, env = host
    r = run([str(ours / "nemoclaw"), "alpha", "connect", "--x", "a b", ""], env, stdin="piped text")
    assert r.returncode == 37
    assert r.stdout == "<alpha>\n<connect>\n<--x>\n<a b>\n<>\nstdin:piped text"
    assert r.stderr == "upstream says no\n"  # nothing of ours


@pytest.mark.parametrize("argv", [["onboard"], ["list", "--json"], ["help"], ["--some-flag"], ["alpha"],
                                  ["alpha", "snapshot", "list"]])
def test_global_commands_bare_sandboxes_and_unknown_options_pass_through(host, argv):
    home, ours, real, env = host
    r = run([str(ours / "nemoclaw"), *argv], env)
    assert (r.returncode, r.stderr) == (37, "upstream says no\n")
    assert r.stdout == "".join(f"<{a}>\n" for a in argv) + "stdin:"


def test_the_variable_names_the_real_cli_before_path_and_another_install_of_ours_is_skipped(host, tmp_path):
    home, ours, real, env = host
    # Another install of this program (a venv's console script copied elsewhere) comes first.
    other = tmp_path / "other-venv-bin"
    other.mkdir()
    shutil.copy(NEMOCLAW, other / "nemoclaw")
    env = {**env, "PATH": f"{other}:{ours}:{env['PATH']}"}
    r = run([str(other / "nemoclaw"), "status"], env)
    assert (r.returncode, r.stdout) == (37, "<status>\nstdin:")
    named = tmp_path / "elsewhere" / "nemoclaw-real"
    named.parent.mkdir()
    named.write_text(UPSTREAM.replace("exit 37", "exit 5"))
    named.chmod(0o755)
    r = run([str(ours / "nemoclaw"), "status"], {**env, "NEMOCLAW_UPSTREAM_CLI": str(named)})
    assert (r.returncode, r.stdout, r.stderr) == (5, "<status>\nstdin:", "upstream says no\n")


def test_with_no_real_cli_a_command_that_is_not_ours_exits_127_with_one_sentence(host):
    home, ours, real, env = host
    real.unlink()
    r = run([str(ours / "nemoclaw"), "alpha", "connect"], env)
    assert (r.returncode, r.stdout) == (127, "")
    assert r.stderr == ("  The NemoClaw CLI was not found, and `nemoclaw alpha connect` is not one of this program's "
                        "commands: install NemoClaw, or set NEMOCLAW_UPSTREAM_CLI to the path of its `nemoclaw`.\n")
    r = run([str(ours / "nemoclaw"), "onboard"], {**env, "NEMOCLAW_UPSTREAM_CLI": str(ours / "nemoclaw")})
    assert r.returncode == 127
    assert r.stderr == ("  The NemoClaw CLI was not found: NEMOCLAW_UPSTREAM_CLI=" + str(ours / "nemoclaw") + " is this "
                        "program, not the NemoClaw CLI; set NEMOCLAW_UPSTREAM_CLI to the path of NemoClaw's `nemoclaw`, "
                        "or unset it.\n")


def test_sandbox_first_rebuild_is_our_rebuild_sandbox(host):
    home, ours, real, env = host
    assert route(["alpha", "rebuild", "--yes", "--verbose", "--image", "x:1"]) == [
        "rebuild-sandbox", "alpha", "--image", "x:1"]
    assert route(["alpha", "rebuild"]) == ["rebuild-sandbox", "alpha"]
    assert route(["list", "rebuild"]) is None  # a global command's argument, not a sandbox
    r = run([str(ours / "nemoclaw"), "alpha", "rebuild", "--yes"], env)
    assert (r.returncode, r.stdout) == (1, "  No sandboxes found in the registry.\n"), r.stderr
    assert not (home / "upstream-ran").exists()


def test_our_commands_stay_ours(host):
    home, ours, real, env = host
    for argv in (["backup-all", "--help"], ["upgrade-sandboxes", "--help"], ["workflows", "list"], ["--version"]):
        r = run([str(ours / "nemoclaw"), *argv], env)
        assert r.returncode == 0 and "stdin:" not in r.stdout, (argv, r.stdout, r.stderr)
    assert not (home / "upstream-ran").exists()


def test_help_lists_ours_and_says_where_the_rest_go(host):
    home, ours, real, env = host
    r = run([str(ours / "nemoclaw"), "--help"], env)
    assert r.returncode == 0
    assert r.stdout.endswith(f"\n  {real}\n")  # the path on its own line, never wrapped
    assert "is handed unchanged to the NemoClaw CLI:" in " ".join(r.stdout.split())
    real.unlink()
    text = " ".join(run([str(ours / "nemoclaw"), "--help"], env).stdout.split())
    assert "handed unchanged to the NemoClaw CLI, which was not found (set NEMOCLAW_UPSTREAM_CLI to its path)." in text


def test_a_user_workflow_named_like_a_nemoclaw_command_is_refused_and_the_real_one_runs(host):
    home, ours, real, env = host
    wf = home / ".nemoclaw" / "workflows"
    wf.mkdir(parents=True)
    (wf / "onboard.yaml").write_text("name: onboard\nsummary: Mine.\ninitial: a\nstates:\n  a: {terminal: true}\n")
    r = run([str(ours / "nemoclaw"), "onboard"], env)
    assert (r.returncode, r.stdout) == (37, "<onboard>\nstdin:")
    r = run([str(ours / "nemoclaw"), "workflows", "validate"], env)
    assert r.returncode == 2
    assert (f"{wf / 'onboard.yaml'}:1: name: 'onboard' is a command of the NemoClaw CLI (`nemoclaw onboard` runs it); "
            "a workflow must not shadow it: rename the file and its name (docs/reference/nemoclaw-cli.md)") in r.stderr
    help_text = run([str(ours / "nemoclaw"), "--help"], env).stdout
    assert "\n  onboard " not in help_text.split("Commands:")[1]


def test_a_pass_through_imports_neither_click_nor_anything_below_the_cli(host):
    """What the program has imported when it execs the real CLI (os.execv replaced, in a child
    interpreter, by a function that prints sys.modules)."""
    home, ours, real, env = host
    code = ("import os, sys\n"
            "def show(path, argv):\n"
            "    print(json.dumps([path, argv, sorted(sys.modules)]))\n"
            "    raise SystemExit(0)\n"
            "import json\n"
            "os.execv = show\n"
            "sys.argv = ['nemoclaw', 'alpha', 'connect']\n"
            "from orchestrator.cli import main\n"
            "main()\n")
    r = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
                       capture_output=True, text=True, timeout=60, cwd=home)
    assert r.returncode == 0, r.stderr
    path, argv, modules = json.loads(r.stdout)
    assert (path, argv) == (str(real), [str(real), "alpha", "connect"])
    heavy = ("click", "yaml", "attrs", "cattrs", "rich", "docker", "tenacity", "transitions", "orchestrator.engine",
             "orchestrator.steps", "orchestrator.store", "orchestrator.adapters", "orchestrator.cli.root")
    assert [m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy)] == []
