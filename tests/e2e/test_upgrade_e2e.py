"""`nemoclaw upgrade-sandboxes` and `nemoclaw rebuild-sandbox NAME` end to end (issue 6).

Real `nemoclaw` processes against the OpenShell stand-in (a real gateway process, the real
`openshell` CLI program) and the real Docker engine. Sandbox names are unique per test: other
deployments may share the engine, and sandboxes are found by their name label.

What is compared, and how:
* "changes nothing": every file under the simulated HOME (path, type, mode, SHA-256), except
  the run logs under ~/.nemoclaw/runs/ which a run may always write; plus each sandbox
  container's id, status and image; plus the selected gateway and the gateway's pid.
* "files identical": the agent's state tree *inside* the container (every path below the
  declared state dirs: type, mode, SHA-256), hashed before and after through Docker exec. The
  tree is first changed (new, edited, deleted files) so that it differs from any image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.diagnosis_text import host_process_drift_block

from nemoclaw_sim.images import ensure_agent_image
from orchestrator.adapters.agents.definitions import load_agent
from tests.support.sandbox_tree import state_tree_script

pytestmark = pytest.mark.docker

OLD, NEW = "2026.3.11", "2026.5.22"  # NEW is orchestrator/adapters/agents/openclaw.yaml's expected_version
NAME_LABEL = "openshell.ai/sandbox-name"
AGENT = load_agent("openclaw")


# --- helpers ---------------------------------------------------------------------------------------

def nemoclaw(sim, *args: str, stdin: str | None = None, timeout: float = 240,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `nemoclaw` program in the simulated host's environment; stdin is closed unless given."""
    exe = shutil.which("nemoclaw", path=sim.env["PATH"])
    assert exe, "the nemoclaw entry point is not installed next to this interpreter"
    return subprocess.run([exe, *args], env={**sim.env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
                          input=stdin if stdin is not None else "")


def container(docker_client, name: str):
    found = [c for c in docker_client.containers.list(all=True, filters={"label": f"{NAME_LABEL}={name}"})
             if c.labels.get(NAME_LABEL) == name]
    assert len(found) == 1, f"expected one container for sandbox {name}, found {[c.name for c in found]}"
    return found[0]


def sh(docker_client, name: str, script: str) -> str:
    rc, out = container(docker_client, name).exec_run(["sh", "-c", script], user="root")
    text = (out or b"").decode("utf-8", "replace")
    assert rc == 0, f"`{script}` in {name} exited {rc}: {text}"
    return text


def state_tree(docker_client, name: str) -> list[str]:
    """One line per path under the agent's state dirs: type, mode, SHA-256 of files, path."""
    script = state_tree_script(AGENT.dir, AGENT.state_dirs)
    lines = sh(docker_client, name, script).splitlines()
    assert any(line.startswith("F ") for line in lines), f"no state files found in {name}"
    return lines


def personalise(docker_client, name: str) -> None:
    """Make the sandbox's state differ from every image: new, edited, deleted and binary files."""
    sh(docker_client, name, (
        f"cd {AGENT.dir} && printf 'notes of %s\\n' {name} > workspace/notes.txt && chmod 600 workspace/notes.txt"
        " && echo 'edited before the upgrade' >> workspace/SOUL.md && rm workspace/USER.md"
        " && mkdir -p memory/new/deep && head -c 200000 /dev/urandom > memory/new/deep/blob.bin"
    ))


def agent_version_in(docker_client, name: str) -> str:
    return sh(docker_client, name, "openclaw --version").strip()


def file_tree(home: Path) -> dict[str, str]:
    """Everything under HOME except run logs: path → type/mode/content hash."""
    tree: dict[str, str] = {}
    runs = home / ".nemoclaw" / "runs"
    for p in sorted(home.rglob("*")):
        if p == runs or runs in p.parents:
            continue
        st = p.lstat()
        rel = str(p.relative_to(home))
        if p.is_symlink():
            tree[rel] = f"L {p.readlink()}"
        elif p.is_dir():
            tree[rel] = f"D {oct(st.st_mode & 0o7777)}"
        else:
            tree[rel] = f"F {oct(st.st_mode & 0o7777)} {hashlib.sha256(p.read_bytes()).hexdigest()}"
    return tree


def containers_state(docker_client, names: list[str]) -> dict[str, tuple[str, str, str]]:
    out = {}
    for n in names:
        c = container(docker_client, n)
        out[n] = (c.id, c.status, c.attrs["Config"]["Image"])
    return out


def world(sim, docker_client, names: list[str]) -> dict:
    """What a read-only or refused run must leave exactly as it was."""
    return {
        "files": file_tree(sim.home),
        "containers": containers_state(docker_client, names),
        "active_gateway": (sim.home / ".config" / "openshell" / "active_gateway").read_text(),
        "gateway_pid": sim.marker().get("pid"),
    }


def assert_same_world(before: dict, after: dict) -> None:
    """Equal, or a readable list of what changed."""
    fb, fa = before["files"], after["files"]
    changed = sorted(k for k in fb.keys() | fa.keys() if fb.get(k) != fa.get(k))
    assert not changed, f"files changed: {changed}"
    assert {k: v for k, v in after.items() if k != "files"} == {k: v for k, v in before.items() if k != "files"}


def registry_versions(sim) -> dict[str, str | None]:
    return {k: v.get("agentVersion") for k, v in sim.registry()["sandboxes"].items()}


def run_events(sim) -> list[dict]:
    """Events of the newest run log."""
    logs = sorted((sim.home / ".nemoclaw" / "runs").glob("*.jsonl"))
    assert logs, "no run log was written"
    return [json.loads(line) for line in logs[-1].read_text().splitlines() if line.strip()]


def states_entered(events: list[dict]) -> list[str]:
    return [e["state"] for e in events if e["event"] == "state_entered"]


def finished(events: list[dict]) -> dict:
    return next(e for e in reversed(events) if e["event"] == "run_finished")


def stale_line(name: str, current: str, status: str) -> str:
    return f"    {name}  v{current} → v{NEW}  ({status})"


@pytest.fixture
def names(unique):
    """Unique sandbox names for this test: names('a', 'b') → ['u<hex>a', 'u<hex>b']."""
    return lambda *suffixes: [f"u{unique}{s}" for s in suffixes]


@pytest.fixture
def new_image(docker_client) -> str:
    """The rebuild's default target (the sandbox's image re-tagged with the expected version)."""
    return ensure_agent_image(docker_client, NEW)


FLEET = {"sandboxes": 0, "agent_version": OLD}


def add_fleet(sim, docker_client, names):
    """Two stale running sandboxes, one current, one stale but stopped (registry order a, b, c, d);
    on this release (0.0.44, no `openshell sandbox stop`) the stand-in stops it behind the
    gateway's back, so its phase is Error."""
    a, b, c, d = names("a", "b", "c", "d")
    sim.add_sandbox(a, agent_version=OLD)
    sim.add_sandbox(b, agent_version=OLD)
    sim.add_sandbox(c, agent_version=NEW)
    sim.add_sandbox(d, agent_version=OLD, stopped=True)
    for n in (a, b, c):
        personalise(docker_client, n)
    return a, b, c, d


# --- tests -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_check_lists_stale_and_stopped_with_upstream_lines_and_changes_nothing(sim, docker_client, names, new_image):
    a, b, c, d = add_fleet(sim, docker_client, names)
    before = world(sim, docker_client, [a, b, c, d])
    journals = sorted((sim.home / ".nemoclaw" / "runs").glob("*.jsonl"))

    res = nemoclaw(sim, "upgrade-sandboxes", "--check")

    assert res.returncode == 1, res.stdout + res.stderr  # work to do: exit 1 (NemoClaw #10211)
    assert res.stdout.splitlines() == [
        "",
        "  Stale sandboxes:",
        stale_line(a, OLD, "running"),
        stale_line(b, OLD, "running"),
        stale_line(d, OLD, "stopped; phase Error"),
        "",
        "  3 sandbox(es) need upgrading.",
        "  Run `nemoclaw upgrade-sandboxes` to rebuild them.",
    ]
    assert res.stderr == ""
    assert_same_world(before, world(sim, docker_client, [a, b, c, d]))
    # It "writes nothing" (its help): not even a run journal.
    assert sorted((sim.home / ".nemoclaw" / "runs").glob("*.jsonl")) == journals

    # --json (every workflow command has it): the same lines on stderr, one object on stdout.
    as_json = nemoclaw(sim, "upgrade-sandboxes", "--check", "--json")
    assert as_json.returncode == 1, as_json.stderr
    assert as_json.stderr.splitlines() == res.stdout.splitlines()
    doc = json.loads(as_json.stdout)
    assert (doc["workflow"], doc["terminal"], doc["exit_code"]) == ("upgrade-sandboxes", "attention", 1)
    assert [row["sandbox"] for row in doc["summary"]["stale"]] == [a, b, d]
    assert doc["summary"]["current"] == [c]
    assert_same_world(before, world(sim, docker_client, [a, b, c, d]))
    assert sorted((sim.home / ".nemoclaw" / "runs").glob("*.jsonl")) == journals


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_yes_rebuilds_stale_running_and_stopped_keeping_files(sim, docker_client, names, new_image):
    a, b, c, d = add_fleet(sim, docker_client, names)
    trees = {n: state_tree(docker_client, n) for n in (a, b)}
    assert all(any("workspace/notes.txt" in line for line in t) for t in trees.values())
    untouched = containers_state(docker_client, [c])

    res = nemoclaw(sim, "upgrade-sandboxes", "--yes")

    out = res.stdout.splitlines()
    assert res.returncode == 0, res.stdout + res.stderr
    assert not any("Skipping" in line for line in out)  # a stopped (Error) sandbox is rebuilt too (#12305)
    assert f"  ✓ Sandbox '{a}' rebuilt successfully" in out and f"  ✓ Sandbox '{b}' rebuilt successfully" in out
    assert f"  ✓ Sandbox '{d}' rebuilt successfully" in out
    assert out[-1] == "  ✓ 3 sandbox(es) rebuilt."
    assert "Rebuild '" not in res.stdout  # --yes never prompts
    for n in (a, b):
        assert state_tree(docker_client, n) == trees[n], f"{n}: state differs after the rebuild"
        assert agent_version_in(docker_client, n) == f"OpenClaw {NEW}"
        assert container(docker_client, n).attrs["Config"]["Image"] == new_image
    assert containers_state(docker_client, [c]) == untouched  # the current one: the same container
    assert agent_version_in(docker_client, d) == f"OpenClaw {NEW}"  # rebuilt from its Error phase: it runs
    assert registry_versions(sim) == {a: NEW, b: NEW, c: NEW, d: NEW}
    for n in (a, b, d):  # the backups stay
        assert len(list((sim.home / ".nemoclaw" / "rebuild-backups" / n).iterdir())) == 1

    again = nemoclaw(sim, "upgrade-sandboxes", "--check")
    assert (again.returncode, again.stdout) == (0, "  All sandboxes are up to date.\n"), again.stdout + again.stderr


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_create_failure_after_delete_rolls_back_to_previous_image_with_files(sim, docker_client, names, new_image):
    a, b = names("a", "b")
    sim.add_sandbox(a, agent_version=OLD)
    sim.add_sandbox(b, agent_version=OLD)
    for n in (a, b):
        personalise(docker_client, n)
    tree_a = state_tree(docker_client, a)
    old_image = container(docker_client, a).attrs["Config"]["Image"]
    old_id = container(docker_client, a).id
    sim.set_fault("create", "injected create failure")  # the next create only: a's rebuild

    res = nemoclaw(sim, "upgrade-sandboxes", "--yes")

    assert res.returncode == 1, res.stdout + res.stderr
    c = container(docker_client, a)
    assert c.id != old_id, "the sandbox was not deleted and recreated"
    assert c.attrs["Config"]["Image"] == old_image
    assert c.status == "running"
    assert state_tree(docker_client, a) == tree_a
    assert agent_version_in(docker_client, a) == f"OpenClaw {OLD}"
    assert sim.openshell("sandbox", "list", "--names").stdout.split().count(a) == 1
    # It says what happened: the cause, the rollback, the summary.
    err = res.stderr
    assert "injected create failure" in err
    assert f"  Rolled back '{a}': it runs {old_image} again with its files restored from " in err
    assert f"Failed to rebuild '{a}'" in err
    assert "  ⚠ 1 sandbox(es) failed — see errors above." in res.stdout.splitlines()
    # The other sandbox was still rebuilt; the failed one keeps its old registry version.
    assert agent_version_in(docker_client, b) == f"OpenClaw {NEW}"
    assert registry_versions(sim) == {a: OLD, b: NEW}
    assert len(list((sim.home / ".nemoclaw" / "rebuild-backups" / a).iterdir())) == 1  # backup kept
    events = run_events(sim)
    assert finished(events)["terminal"] == "failed" and finished(events)["exit_code"] == 1
    items = {e["item"]: e for e in events if e["event"] == "item_finished"}
    assert items[a]["terminal"] == "failed" and items[b]["terminal"] == "done"
    assert any(e["event"] == "rolled_back" and e["sandbox"] == a for e in events)


@pytest.mark.parametrize("sim", [{"sandboxes": 0, "cli": "0.0.44", "gateway": "0.0.43"}], indirect=True)
@pytest.mark.parametrize("argv, action, command", [
    (["upgrade-sandboxes"], "checking sandbox upgrade state", "nemoclaw upgrade-sandboxes"),
    (["upgrade-sandboxes", "--check"], "checking sandbox upgrade state", "nemoclaw upgrade-sandboxes"),
    (["upgrade-sandboxes", "--yes"], "checking sandbox upgrade state", "nemoclaw upgrade-sandboxes"),
    (["rebuild-sandbox", "{name}"], "rebuilding sandbox '{name}'", "nemoclaw rebuild-sandbox {name}"),
])
def test_cli_gateway_drift_refuses_before_anything(sim, docker_client, names, new_image, argv, action, command):
    (a,) = names("a")
    sim.add_sandbox(a, agent_version=OLD)
    argv = [x.format(name=a) for x in argv]
    action, command = action.format(name=a), command.format(name=a)
    before = world(sim, docker_client, [a])

    res = nemoclaw(sim, *argv)

    assert res.returncode == 1, res.stdout + res.stderr
    block = host_process_drift_block(action, command, os.path.realpath(sim.bin / "openshell-gateway"), "0.0.44", "0.0.43")
    assert res.stderr.splitlines() == block
    assert "Stale sandboxes" not in res.stdout
    assert_same_world(before, world(sim, docker_client, [a]))
    if "--check" in argv:  # it writes nothing, not even a run journal
        assert not list((sim.home / ".nemoclaw" / "runs").glob("*.jsonl"))
        return
    events = run_events(sim)
    assert states_entered(events) == ["registry", "preflight"]
    assert finished(events)["terminal"] == "refused"


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_prompts_per_sandbox_n_skips_and_y_rebuilds(sim, docker_client, names, new_image):
    a, b = names("a", "b")
    sim.add_sandbox(a, agent_version=OLD)
    sim.add_sandbox(b, agent_version=OLD)
    kept = containers_state(docker_client, [a])

    res = nemoclaw(sim, "upgrade-sandboxes", stdin="n\n y \n")

    assert res.returncode == 0, res.stdout + res.stderr
    assert f"  Rebuild '{a}'? [y/N]:   Skipped '{a}'." in res.stdout.splitlines()
    assert f"  Rebuild '{b}'? [y/N]:   Rebuild sandbox '{b}'" in res.stdout.splitlines()
    assert res.stdout.splitlines()[-1] == "  ✓ 1 sandbox(es) rebuilt."
    assert containers_state(docker_client, [a]) == kept
    assert agent_version_in(docker_client, b) == f"OpenClaw {NEW}"
    assert registry_versions(sim) == {a: OLD, b: NEW}


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_all_declined_changes_nothing_and_exits_0(sim, docker_client, names, new_image):
    (a,) = names("a")
    sim.add_sandbox(a, agent_version=OLD)
    before = world(sim, docker_client, [a])

    res = nemoclaw(sim, "upgrade-sandboxes", stdin="N\n")

    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1] == f"  Rebuild '{a}'? [y/N]:   Skipped '{a}'."
    assert_same_world(before, world(sim, docker_client, [a]))


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_rebuild_sandbox_alone(sim, docker_client, names, new_image):
    a, b = names("a", "b")
    sim.add_sandbox(a, agent_version=OLD)
    sim.add_sandbox(b, agent_version=OLD)
    personalise(docker_client, a)
    tree = state_tree(docker_client, a)
    other = containers_state(docker_client, [b])

    res = nemoclaw(sim, "rebuild-sandbox", a)

    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout.splitlines()
    assert out[:3] == [f"  Rebuild sandbox '{a}'", f"    Current: {OLD} (nemoclaw-sim/openclaw:{OLD})",
                       f"    Target:  {NEW} ({new_image})"]
    assert out[-1] == f"  ✓ Sandbox '{a}' rebuilt successfully"
    assert state_tree(docker_client, a) == tree
    assert agent_version_in(docker_client, a) == f"OpenClaw {NEW}"
    assert containers_state(docker_client, [b]) == other
    assert registry_versions(sim) == {a: NEW, b: OLD}
    assert finished(run_events(sim))["terminal"] == "done"


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_probe_beats_registry_cache_and_unprobeable_is_unknown(sim, docker_client, names, new_image):
    """#4429: the registry claims current, the sandbox runs the old agent → stale. A running
    sandbox whose agent cannot be asked → unknown. A stopped one is judged by the registry."""
    liar, mute, stopped_current = names("l", "m", "s")
    sim.add_sandbox(liar, agent_version=OLD)
    sim.add_sandbox(mute, agent_version=NEW)
    sim.add_sandbox(stopped_current, agent_version=NEW, stopped=True)
    reg_path = sim.paths.registry_file
    reg = json.loads(reg_path.read_text())
    reg["sandboxes"][liar]["agentVersion"] = NEW
    reg_path.write_text(json.dumps(reg, indent=2))
    sh(docker_client, mute, "rm /usr/local/bin/openclaw")
    before = world(sim, docker_client, [liar, mute, stopped_current])

    res = nemoclaw(sim, "upgrade-sandboxes", "--check")

    assert res.returncode == 1, res.stdout + res.stderr  # work to do: exit 1 (NemoClaw #10211)
    assert res.stdout.splitlines() == [
        "",
        "  Stale sandboxes:",
        stale_line(liar, OLD, "running"),
        "",
        "  Unknown version:",
        f"    {mute}  v? → v{NEW}  (running)",
        "",
        "  1 sandbox(es) need upgrading.",
        "  1 sandbox(es) could not be version-checked; start them and rerun, or rebuild manually.",
        "  Run `nemoclaw upgrade-sandboxes` to rebuild them.",
    ]
    assert "All sandboxes are up to date." not in res.stdout
    assert_same_world(before, world(sim, docker_client, [liar, mute, stopped_current]))  # not even the registry cache


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_check_with_gateway_down_starts_none_and_selects_none(sim, docker_client, names, new_image):
    """--check is read-only (NemoClaw #7279): an unreachable gateway is reported, never started or selected."""
    (a,) = names("a")
    sim.add_sandbox(a, agent_version=OLD)
    sim.stop_gateway()
    before = {"files": file_tree(sim.home),
              "active_gateway": (sim.home / ".config" / "openshell" / "active_gateway").read_text()}

    res = nemoclaw(sim, "upgrade-sandboxes", "--check")

    assert res.returncode == 1, res.stdout + res.stderr
    assert "Failed to query running sandboxes from OpenShell." in res.stderr
    assert "Starting OpenShell" not in res.stdout + res.stderr
    after = {"files": file_tree(sim.home),
             "active_gateway": (sim.home / ".config" / "openshell" / "active_gateway").read_text()}
    assert after == before


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_failed_backup_aborts_rebuild_and_changes_nothing(sim, docker_client, names, new_image):
    (a,) = names("a")
    sim.add_sandbox(a, agent_version=OLD)
    # The backup fails: its state is over the per-sandbox limit (NEMOCLAW_BACKUP_MAX_BYTES).
    before = world(sim, docker_client, [a])

    res = nemoclaw(sim, "rebuild-sandbox", a, env={"NEMOCLAW_BACKUP_MAX_BYTES": "1000"})

    assert res.returncode == 1, res.stdout + res.stderr
    assert "  Aborting rebuild to prevent data loss." in res.stderr.splitlines()
    assert f"{a}: backup failed (its state is larger than the per-sandbox limit" in res.stderr, res.stderr
    assert "Deleting sandbox" not in res.stdout
    after = world(sim, docker_client, [a])
    # Only the (empty) staging area may have appeared: no backup was committed.
    backups = sim.home / ".nemoclaw" / "rebuild-backups"
    assert sorted(p.name for p in backups.iterdir() if p.name != ".paused") == [".staging"]
    assert not any((backups / ".staging").iterdir()) and not any((backups / ".paused").iterdir())  # unfrozen again
    after["files"] = {k: v for k, v in after["files"].items() if not k.startswith(".nemoclaw/rebuild-backups")}
    assert_same_world(before, after)  # sandbox, registry and everything else as they were
    assert finished(run_events(sim))["terminal"] == "failed"


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_delete_failure_leaves_the_sandbox_as_it_was(sim, docker_client, names, new_image):
    (a,) = names("a")
    sim.add_sandbox(a, agent_version=OLD)
    personalise(docker_client, a)
    tree = state_tree(docker_client, a)
    kept = containers_state(docker_client, [a])
    sim.set_fault("delete", "injected delete failure")

    res = nemoclaw(sim, "rebuild-sandbox", a)

    assert res.returncode == 1, res.stdout + res.stderr
    assert "injected delete failure" in res.stderr
    assert f"  Sandbox '{a}' was not deleted; it still runs nemoclaw-sim/openclaw:{OLD}. Nothing was changed." in res.stderr
    assert "Rolling back" not in res.stderr
    assert containers_state(docker_client, [a]) == kept
    assert state_tree(docker_client, a) == tree
    assert registry_versions(sim) == {a: OLD}


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_wrong_version_after_restore_rolls_back(sim, docker_client, names, new_image):
    """The target image runs another agent version: verify fails after the restore, and the
    half-built sandbox is replaced by one on the previous image with the same files."""
    (a,) = names("a")
    sim.add_sandbox(a, agent_version=OLD)
    personalise(docker_client, a)
    tree = state_tree(docker_client, a)
    wrong = ensure_agent_image(docker_client, "2026.4.1")

    res = nemoclaw(sim, "rebuild-sandbox", a, "--image", wrong)

    assert res.returncode == 1, res.stdout + res.stderr
    assert f"  Sandbox '{a}' reports agent version 2026.4.1, expected {NEW}." in res.stderr.splitlines()
    assert f"  Rolled back '{a}': it runs nemoclaw-sim/openclaw:{OLD} again with its files restored from " in res.stderr
    assert container(docker_client, a).attrs["Config"]["Image"] == f"nemoclaw-sim/openclaw:{OLD}"
    assert state_tree(docker_client, a) == tree
    assert agent_version_in(docker_client, a) == f"OpenClaw {OLD}"
    assert registry_versions(sim) == {a: OLD}


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_failed_rollback_prints_commands_that_restore_by_hand_and_stops(sim, docker_client, names, new_image):
    a, b = names("a", "b")
    sim.add_sandbox(a, agent_version=OLD)
    sim.add_sandbox(b, agent_version=OLD)
    personalise(docker_client, a)
    tree = state_tree(docker_client, a)
    kept = containers_state(docker_client, [b])
    sim.set_fault("create", "injected create failure", sticky=True)  # the rollback's create fails too

    res = nemoclaw(sim, "upgrade-sandboxes", "--yes")

    assert res.returncode == 1, res.stdout + res.stderr
    err = res.stderr.splitlines()
    assert f"  Rollback of '{a}' failed too: Internal: injected create failure" in err
    commands = [ln.split("#")[0].strip() for ln in err if ln.startswith("    openshell ") or ln.startswith("    nemoclaw ")]
    assert commands[-2] == f"openshell sandbox create --name {a} --from nemoclaw-sim/openclaw:{OLD}"
    assert commands[-1].startswith(f"nemoclaw backups restore {a} --from ")
    assert a not in sim.openshell("sandbox", "list", "--names").stdout.split()  # it really is gone
    # The next sandbox is not put at risk by the same fault.
    assert any(ln.startswith(f"  Not rebuilding '{b}': the rebuild of '{a}' could not be rolled back") for ln in err)
    assert containers_state(docker_client, [b]) == kept
    assert finished(run_events(sim))["terminal"] == "failed"

    # Following the printed commands brings it back, files and all.
    sim.clear_faults()
    for cmd in commands:
        if cmd.startswith("openshell sandbox delete"):
            continue  # "only if it is still listed"; it is not
        argv = cmd.split()
        done = nemoclaw(sim, *argv[1:]) if argv[0] == "nemoclaw" else sim.openshell(*argv[1:])
        assert done.returncode == 0, f"{cmd}: {done.stdout}{done.stderr}"
    assert state_tree(docker_client, a) == tree
    assert agent_version_in(docker_client, a) == f"OpenClaw {OLD}"


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_rebuild_sandbox_refuses_an_unknown_sandbox_and_backs_up_a_stopped_one_first(sim, docker_client, names, new_image):
    a, ghost = names("a", "g")
    sim.add_sandbox(a, agent_version=OLD, stopped=True)
    before = world(sim, docker_client, [a])

    unknown = nemoclaw(sim, "rebuild-sandbox", ghost)
    assert unknown.returncode == 1
    assert f"  Sandbox '{ghost}' is not registered in {sim.paths.registry_file}." in unknown.stderr.splitlines()
    assert_same_world(before, world(sim, docker_client, [a]))

    # NemoClaw #12305: a sandbox in phase Error is rebuilt from a backup of its stopped container.
    stopped = nemoclaw(sim, "rebuild-sandbox", a)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    lines = stopped.stdout.splitlines()
    assert lines.index(f"  Sandbox '{a}' is in phase Error: rebuilding it from a backup of its stopped container, "
                       "without starting it; the rebuilt sandbox runs.") < lines.index(
        f"  Backing up '{a}' from its stopped container (phase Error)...") < lines.index(
        "  Creating new sandbox with current image...")
    assert agent_version_in(docker_client, a) == f"OpenClaw {NEW}"


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_auto_rebuilds_without_prompting(sim, docker_client, names, new_image):
    (a,) = names("a")
    sim.add_sandbox(a, agent_version=OLD)

    res = nemoclaw(sim, "upgrade-sandboxes", "--auto")  # stdin is empty: a prompt would skip it

    assert res.returncode == 0, res.stdout + res.stderr
    assert "[y/N]" not in res.stdout and "Skipped" not in res.stdout
    assert res.stdout.splitlines()[-1] == "  ✓ 1 sandbox(es) rebuilt."
    assert agent_version_in(docker_client, a) == f"OpenClaw {NEW}"


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_nothing_to_rebuild_exits_0_with_upstream_lines(sim, docker_client, names, new_image):
    c, d = names("c", "d")
    sim.add_sandbox(c, agent_version=NEW)
    sim.add_sandbox(d, agent_version=OLD)
    container(docker_client, d).pause()  # neither running nor stopped: the listing says Provisioning
    sim.openshell("sandbox", "list")  # the gateway records that phase before the world is taken
    before = world(sim, docker_client, [c, d])

    only_paused = nemoclaw(sim, "upgrade-sandboxes", "--yes")

    assert only_paused.returncode == 0, only_paused.stdout + only_paused.stderr
    assert only_paused.stdout.splitlines() == [
        "", "  Stale sandboxes:", stale_line(d, OLD, "not running; phase Provisioning"), "",
        f"  Skipping 1 sandbox(es) that are neither running nor stopped: {d}; rerun when they are.",
        "  No running stale sandboxes to rebuild.",
    ]
    assert_same_world(before, world(sim, docker_client, [c, d]))
    container(docker_client, d).unpause()

    reg = sim.registry()
    del reg["sandboxes"][d]
    sim.paths.registry_file.write_text(json.dumps(reg))
    current = nemoclaw(sim, "upgrade-sandboxes")
    assert (current.returncode, current.stdout) == (0, "  All sandboxes are up to date.\n")

    sim.paths.registry_file.write_text(json.dumps({"sandboxes": {}, "defaultSandbox": None}))
    empty = nemoclaw(sim, "upgrade-sandboxes")
    assert (empty.returncode, empty.stdout) == (0, "  No sandboxes found in the registry.\n")
    assert states_entered(run_events(sim)) == ["registry"]  # no OpenShell call at all


def home_file_sums(docker_client, name: str) -> str:
    return sh(docker_client, name, "cd /sandbox && find user-data -type f | sort | xargs sha256sum")


@pytest.mark.parametrize("sim", [FLEET], indirect=True)
def test_files_in_user_data_survive_a_rebuild_byte_identical(sim, docker_client, names, new_image):
    """NemoClaw #11767/#2882: upstream's selective recreate warns that /sandbox/user-data is NOT
    preserved. A whole-home backup (the default) keeps it, with the agent's state."""
    a, b = names("a", "b")
    for n in (a, b):
        sim.add_sandbox(n, agent_version=OLD)
        personalise(docker_client, n)
        sh(docker_client, n, "set -e; mkdir -p /sandbox/user-data/deep/er; head -c 300000 /dev/urandom > "
                             "/sandbox/user-data/deep/er/data.bin; printf 'x\\0y' > /sandbox/user-data/nul.txt; "
                             "chmod 640 /sandbox/user-data/nul.txt")
    want = {n: (home_file_sums(docker_client, n), state_tree(docker_client, n)) for n in (a, b)}
    mode = sh(docker_client, a, "stat -c %a /sandbox/user-data/nul.txt")

    res = nemoclaw(sim, "rebuild-sandbox", a)
    assert res.returncode == 0, res.stdout + res.stderr
    assert agent_version_in(docker_client, a) == f"OpenClaw {NEW}"
    assert (home_file_sums(docker_client, a), state_tree(docker_client, a)) == want[a]
    assert sh(docker_client, a, "stat -c %a /sandbox/user-data/nul.txt") == mode

    # The agent-declared scope restores the agent's state only: user-data is gone, as upstream warns.
    res = nemoclaw(sim, "rebuild-sandbox", b, "--scope", "agent")
    assert res.returncode == 0, res.stdout + res.stderr
    assert state_tree(docker_client, b) == want[b][1]
    assert "user-data" not in sh(docker_client, b, "ls -A /sandbox")
