"""Durable runs end to end: a rebuild SIGKILLed at a state boundary, in the middle of the backup
stream or of the restore upload, or during the second of three rebuilds, is noticed by the next
command and finished by it, with nothing lost (issue: durable runs).

Real `nemoclaw` processes against one shared deployment of the OpenShell stand-in and the real
Docker engine. Each test adds its own stale sandboxes (unique names), changes their state so it
differs from any image, and removes them at the end, so the tests do not see each other's.

"Nothing lost" is checked inside the container: every path under the agent's state dirs (type,
mode, SHA-256) after the finished rebuild equals what it was before the first run; the agent runs
the expected version and the registry records it; a second run changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from nemoclaw_sim.images import ensure_agent_image
from orchestrator.adapters.agents.definitions import load_agent
from tests.support import pause_kill
from tests.support.sandbox_tree import state_tree_script
from tests.support.simenv import SimEnv

pytestmark = pytest.mark.docker

OLD, NEW = "2026.3.11", "2026.5.22"
NAME_LABEL = "openshell.ai/sandbox-name"
AGENT = load_agent("openclaw")
KILL_ENV = "NEMOCLAW_TEST_KILL_AT"


@pytest.fixture(scope="module")
def env(tmp_path_factory, docker_client):
    """One running simulated host for the whole module (a gateway, no sandboxes yet)."""
    sim = SimEnv((tmp_path_factory.mktemp("durable") / "home").resolve())
    sim.home.mkdir()
    sim.up(sandboxes=0, agent_version=OLD)
    ensure_agent_image(docker_client, NEW)
    try:
        yield sim
    finally:
        sim.down()


class Fleet:
    def __init__(self, sim: SimEnv, docker_client) -> None:
        self.sim, self.docker = sim, docker_client
        self.names: list[str] = []

    def add(self, n: int = 1) -> list[str]:
        new = [f"d{uuid.uuid4().hex[:8]}" for _ in range(n)]
        for name in new:
            self.sim.add_sandbox(name, agent_version=OLD)
            self.names.append(name)
            personalise(self, name)
            assert "notes of" in self.sh(name, f"cat {AGENT.dir}/workspace/notes.txt"), f"{name}: not personalised"
        return new

    def remove_all(self) -> None:
        for name in self.names:
            self.sim.openshell("sandbox", "delete", name)
        reg = self.sim.registry()
        reg["sandboxes"] = {k: v for k, v in reg["sandboxes"].items() if v.get("name", k) not in self.names}
        self.sim.paths.registry_file.write_text(json.dumps(reg, indent=2))

    def container(self, name: str):
        found = [c for c in self.docker.containers.list(all=True, filters={"label": f"{NAME_LABEL}={name}"})
                 if c.labels.get(NAME_LABEL) == name]
        assert len(found) == 1, f"expected one container for sandbox {name}, found {[c.name for c in found]}"
        return found[0]

    def sh(self, name: str, script: str) -> str:
        rc, out = self.container(name).exec_run(["sh", "-c", script], user="0")
        text = (out or b"").decode("utf-8", "replace")
        assert rc == 0, f"`{script}` in {name} exited {rc}: {text}"
        return text

    def tree(self, name: str) -> list[str]:
        script = state_tree_script(AGENT.dir, AGENT.state_dirs)
        lines = self.sh(name, script).splitlines()
        assert any("workspace/notes.txt" in line for line in lines), f"{name}: personalised files missing"
        return lines

    def version(self, name: str) -> str:
        return self.sh(name, "openclaw --version").strip()

    def registry_version(self, name: str) -> str | None:
        return next(v.get("agentVersion") for k, v in self.sim.registry()["sandboxes"].items() if v.get("name", k) == name)

    def listed(self, name: str) -> bool:
        return name in self.sim.openshell("sandbox", "list", "--names").stdout.split()


def personalise(fleet: Fleet, name: str) -> None:
    fleet.sh(name, (
        f"cd {AGENT.dir} && printf 'notes of %s\\n' {name} > workspace/notes.txt && chmod 600 workspace/notes.txt"
        " && echo 'edited before the upgrade' >> workspace/SOUL.md && rm workspace/USER.md"
        " && mkdir -p memory/new/deep && head -c 300000 /dev/urandom > memory/new/deep/blob.bin"
    ))


@pytest.fixture
def fleet(env, docker_client):
    f = Fleet(env, docker_client)
    try:
        yield f
    finally:
        f.remove_all()


def nemoclaw(sim: SimEnv, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("nemoclaw", path=sim.env["PATH"])
    assert exe, "the nemoclaw entry point is not installed next to this interpreter"
    return subprocess.run([exe, *args], env={**sim.env, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def newest_run(sim: SimEnv) -> str:
    logs = sorted((sim.home / ".nemoclaw" / "runs").glob("*.jsonl"))
    assert logs, "no run journal was written"
    return logs[-1].stem


def killed_at_pause(sim: SimEnv, point: str, *args: str) -> str:
    """Run nemoclaw until the test pause point `point` (e.g. `restore:<name>`), SIGKILL it
    there, return its run id."""
    return pause_kill.killed_at_pause([shutil.which("nemoclaw", path=sim.env["PATH"]), *args], sim.env, point,
                                      sim.home)


def assert_noticed(sim: SimEnv, fleet: Fleet, run_id: str, name: str, workflow: str = "rebuild-sandbox") -> None:
    """Right after the kill: --check names the interrupted run, never calls an absent sandbox
    stopped, changes nothing, and exits 1."""
    check = nemoclaw(sim, "upgrade-sandboxes", "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    out = check.stdout.splitlines()
    assert any(line.startswith(f"  Interrupted run {run_id} ({workflow} '{name}', stopped in state '") for line in out), check.stdout
    assert f"    {name}  v{OLD} → v{NEW}  (stopped)" not in out
    if not fleet.listed(name):
        assert f"  1 recorded sandbox(es) were not found on their recorded gateway: {name}." in out, check.stdout
        assert f"    {name}: interrupted run {run_id} was working on it; finish it with `nemoclaw runs resume {run_id}`." in out
    assert "All sandboxes are up to date." not in check.stdout


def assert_finished(sim: SimEnv, fleet: Fleet, names: list[str], trees: dict[str, list[str]]) -> None:
    for name in names:
        assert fleet.listed(name), f"{name} is not listed after the resumed run"
        assert fleet.container(name).status == "running"
        assert fleet.tree(name) == trees[name], f"{name}: state differs from before the first run"
        assert fleet.version(name) == f"OpenClaw {NEW}"
        assert fleet.registry_version(name) == NEW


def assert_second_run_changes_nothing(sim: SimEnv, fleet: Fleet, names: list[str]) -> None:
    ids = {n: fleet.container(n).id for n in names}
    again = nemoclaw(sim, "upgrade-sandboxes", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "  All sandboxes are up to date." in again.stdout.splitlines()
    assert "Resuming" not in again.stdout
    assert {n: fleet.container(n).id for n in names} == ids


# Every state boundary of rebuild-sandbox that matters: right after each state ends, and right
# after each world-changing state starts (its step has not run yet, or is re-run on resume).
BOUNDARIES = [
    "target:leave", "backup:leave", "commit:enter", "commit:leave", "delete:enter", "delete:leave",
    "create:enter", "create:leave", "wait:leave", "restore:enter", "restore:leave", "verify:leave",
    "record:enter", "record:leave",
]


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_rebuild_killed_at_a_state_boundary_is_finished_by_the_next_upgrade(env, fleet, boundary):
    (name,) = fleet.add()
    trees = {name: fleet.tree(name)}
    state, when = boundary.split(":")

    res = nemoclaw(env, "rebuild-sandbox", name, env={KILL_ENV: f"rebuild-sandbox:{state}:{when}"})
    assert res.returncode == -signal.SIGKILL, res.stdout + res.stderr
    run_id = newest_run(env)
    assert_noticed(env, fleet, run_id, name)

    up = nemoclaw(env, "upgrade-sandboxes", "--yes")
    assert up.returncode == 0, up.stdout + up.stderr
    assert any(line.startswith(f"  Resuming interrupted run {run_id} (rebuild-sandbox '{name}', stopped in state ")
               for line in up.stdout.splitlines()), up.stdout
    assert_finished(env, fleet, [name], trees)
    assert_second_run_changes_nothing(env, fleet, [name])


@pytest.mark.parametrize("pause", ["archive", "restore"])
def test_rebuild_killed_mid_stream_is_finished_by_the_next_upgrade(env, fleet, pause):
    """`archive`: the backup's Docker stream is half read; `restore`: the upload into the new
    sandbox is under way (the old one is already gone)."""
    (name,) = fleet.add()
    trees = {name: fleet.tree(name)}

    run_id = killed_at_pause(env, f"{pause}:{name}", "rebuild-sandbox", name)
    assert_noticed(env, fleet, run_id, name)

    up = nemoclaw(env, "upgrade-sandboxes", "--yes")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"  Resuming interrupted run {run_id}" in up.stdout
    assert_finished(env, fleet, [name], trees)
    assert_second_run_changes_nothing(env, fleet, [name])


def test_runs_resume_finishes_an_interrupted_rebuild(env, fleet):
    (name,) = fleet.add()
    trees = {name: fleet.tree(name)}
    res = nemoclaw(env, "rebuild-sandbox", name, env={KILL_ENV: "rebuild-sandbox:create:enter"})
    assert res.returncode == -signal.SIGKILL
    run_id = newest_run(env)
    assert not fleet.listed(name)

    listed = nemoclaw(env, "runs", "list", "--json")
    row = next(r for r in json.loads(listed.stdout) if r["run"] == run_id)
    assert row["status"] == "interrupted" and row["resumable"] is True and row["stopped_in"] == "create"

    resumed = nemoclaw(env, "runs", "resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"  Resuming interrupted run {run_id} (rebuild-sandbox '{name}', stopped in state 'create' at " in resumed.stdout
    assert f"  ✓ Sandbox '{name}' rebuilt successfully" in resumed.stdout
    assert_finished(env, fleet, [name], trees)
    again = nemoclaw(env, "runs", "resume", run_id)
    assert again.returncode == 2 and "is finished, not interrupted" in again.stderr
    assert_second_run_changes_nothing(env, fleet, [name])


def test_upgrade_killed_in_the_second_of_three_rebuilds_resumes_it_then_does_the_third(env, fleet):
    names = fleet.add(3)
    trees = {n: fleet.tree(n) for n in names}

    res = nemoclaw(env, "upgrade-sandboxes", "--yes", env={KILL_ENV: "rebuild-sandbox:create:enter:2"})
    assert res.returncode == -signal.SIGKILL, res.stdout + res.stderr
    run_id = newest_run(env)
    first = [n for n in names if f"  ✓ Sandbox '{n}' rebuilt successfully" in res.stdout]
    assert len(first) == 1, res.stdout
    first_id = fleet.container(first[0]).id
    second = next(n for n in names if n not in first and not fleet.listed(n))
    assert_noticed(env, fleet, run_id, second, workflow="rebuild-sandbox")

    up = nemoclaw(env, "upgrade-sandboxes", "--yes")
    assert up.returncode == 0, up.stdout + up.stderr
    out = up.stdout
    assert f"  Resuming interrupted run {run_id} (rebuild-sandbox '{second}', stopped in state 'create' at " in out
    assert f"  ✓ Sandbox '{first[0]}' rebuilt successfully" not in out  # not rebuilt again
    assert f"  ✓ Sandbox '{second}' rebuilt successfully" in out
    third = next(n for n in names if n not in first and n != second)
    assert f"  ✓ Sandbox '{third}' rebuilt successfully" in out
    assert fleet.container(first[0]).id == first_id
    assert_finished(env, fleet, names, trees)
    assert_second_run_changes_nothing(env, fleet, names)


YAML_ONLY = """\
name: careful-rebuild
summary: A site's own rebuild, written in YAML only from the built-in steps.
options:
  image: {type: str, help: Target image.}
  from_backup: {type: str, help: Recreate from a backup.}
arguments:
  - name: name
guard:
  action: "rebuilding sandbox '{name}' carefully"
  command: "nemoclaw careful-rebuild {name}"
initial: registry
states:
  registry: {do: read_registry, next: preflight, branches: {empty: failed}}
  preflight: {do: preflight, next: enumerate, refuse: refused}
  enumerate: {do: sandbox_list, next: target, refuse: refused}
  target: {do: rebuild_target, next: backup, branches: {from_backup: create}}
  backup: {do: snapshot, resume: retry, next: commit}
  commit: {do: commit_backups, with: {quiet_summary: true}, resume: backup, next: delete, branches: {partial: failed}}
  delete: {do: delete_sandbox, resume: retry, next: create}
  create: {do: create_sandbox, resume: retry, next: wait}
  wait: {do: wait_ready, next: restore}
  restore: {do: restore_sandbox, resume: retry, next: record}
  record: {do: record_version, resume: retry, next: done}
"""


def test_a_yaml_only_workflow_gets_the_same_resume(env, fleet):
    user_dir = env.home / ".nemoclaw" / "workflows"
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "careful-rebuild.yaml").write_text(YAML_ONLY)
    try:
        (name,) = fleet.add()
        trees = {name: fleet.tree(name)}
        res = nemoclaw(env, "careful-rebuild", name, env={KILL_ENV: "careful-rebuild:create:enter"})
        assert res.returncode == -signal.SIGKILL, res.stdout + res.stderr
        run_id = newest_run(env)
        assert_noticed(env, fleet, run_id, name, workflow="careful-rebuild")

        up = nemoclaw(env, "upgrade-sandboxes", "--yes")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"  Resuming interrupted run {run_id} (careful-rebuild '{name}', stopped in state 'create' at " in up.stdout
        assert_finished(env, fleet, [name], trees)
        assert_second_run_changes_nothing(env, fleet, [name])
    finally:
        (user_dir / "careful-rebuild.yaml").unlink()


def test_abandon_says_what_is_left_and_the_commands_that_restore_it(env, fleet):
    (name,) = fleet.add()
    trees = {name: fleet.tree(name)}
    old_image = fleet.container(name).attrs["Config"]["Image"]
    res = nemoclaw(env, "rebuild-sandbox", name, env={KILL_ENV: "rebuild-sandbox:create:enter"})
    assert res.returncode == -signal.SIGKILL
    run_id = newest_run(env)

    gone = nemoclaw(env, "runs", "abandon", run_id)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    out = gone.stdout.splitlines()
    backup = next(p for p in (env.home / ".nemoclaw" / "rebuild-backups" / name).iterdir())
    assert f"  Sandbox '{name}' may be absent or half-created. The backup is kept in {backup}." in out
    commands = [line.strip() for line in out if line.startswith("    ")]
    assert commands == [f"openshell sandbox delete {name}    # only if it is still listed",
                        f"openshell sandbox create --name {name} --from {old_image}",
                        f"nemoclaw backups restore {name} --from {backup.name} --recreated"]
    # Abandoned: nothing resumes it, and --check now calls the sandbox missing (not stopped).
    check = nemoclaw(env, "upgrade-sandboxes", "--check")
    assert check.returncode == 1
    assert f"Interrupted run {run_id}" not in check.stdout
    assert (f"    {name}: latest verified backup {backup}; recreate it with "
            f"`nemoclaw rebuild-sandbox {name} --from-backup latest`.") in check.stdout.splitlines()

    # The printed commands work.
    env.openshell("sandbox", "create", "--name", name, "--from", old_image)
    deadline = time.monotonic() + 60
    while not fleet.listed(name) and time.monotonic() < deadline:
        time.sleep(0.5)
    restored = nemoclaw(env, "backups", "restore", name, "--from", backup.name, "--recreated")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert fleet.tree(name) == trees[name]


def test_missing_sandbox_is_recreated_from_its_latest_backup(env, fleet):
    (name,) = fleet.add()
    trees = {name: fleet.tree(name)}
    backed = nemoclaw(env, "backup-all")
    assert backed.returncode == 0, backed.stdout + backed.stderr
    env.openshell("sandbox", "delete", name)  # gone behind our back

    check = nemoclaw(env, "upgrade-sandboxes", "--check")
    assert check.returncode == 1
    assert f"  1 recorded sandbox(es) were not found on their recorded gateway: {name}." in check.stdout.splitlines()
    assert f"{name}  v" not in check.stdout  # neither stale, nor stopped

    made = nemoclaw(env, "rebuild-sandbox", name, "--from-backup", "latest")
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"  ✓ Sandbox '{name}' recreated from its backup" in made.stdout
    assert_finished(env, fleet, [name], trees)


def test_a_resume_after_the_gateway_drifted_is_refused_and_stays_resumable(env, fleet):
    (name,) = fleet.add()
    trees = {name: fleet.tree(name)}
    res = nemoclaw(env, "rebuild-sandbox", name, env={KILL_ENV: "rebuild-sandbox:create:enter"})
    assert res.returncode == -signal.SIGKILL
    run_id = newest_run(env)
    cli = env.deployment.cli_version
    env.swap_cli("0.0.45")  # the installed CLI no longer matches the running gateway
    try:
        refused = nemoclaw(env, "runs", "resume", run_id)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "  Installed OpenShell: 0.0.45" in refused.stderr.splitlines()
        assert f"  Run {run_id} was not resumed and stays interrupted; nothing was changed." in refused.stderr.splitlines()
        assert not fleet.listed(name)
        row = next(r for r in json.loads(nemoclaw(env, "runs", "list", "--json").stdout) if r["run"] == run_id)
        assert row["status"] == "interrupted"
    finally:
        env.swap_cli(cli)
    up = nemoclaw(env, "upgrade-sandboxes", "--yes")
    assert up.returncode == 0, up.stdout + up.stderr
    assert_finished(env, fleet, [name], trees)


# --- SIGINT and SIGTERM: interruptions, not endings (issue 20) ------------------------------------

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
POLITE = [signal.SIGINT, signal.SIGTERM]


def signame(signum: int) -> str:
    return signal.Signals(signum).name


def journals(sim: SimEnv) -> list[str]:
    return sorted(p.name for p in (sim.home / ".nemoclaw" / "runs").glob("*.jsonl"))


def signalled_at_pause(sim: SimEnv, point: str, signum: int, *args: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    """Run nemoclaw until the test pause point `point`, send it `signum` there, return its run
    id and how it ended."""
    marker = sim.home / f"pause.{uuid.uuid4().hex[:6]}"
    exe = shutil.which("nemoclaw", path=sim.env["PATH"])
    proc = subprocess.Popen([exe, *args], env={**sim.env, "NEMOCLAW_TEST_PAUSE_AT": point,
                                               "NEMOCLAW_TEST_PAUSE_MARKER": str(marker)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"nemoclaw ended ({proc.returncode}) before pause point {point}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"pause point {point} not reached"
        time.sleep(0.05)
    pid, run_id, _where = marker.read_text().split()
    os.kill(int(pid), signum)
    out, err = proc.communicate(timeout=120)
    return run_id, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_left_interrupted(res: subprocess.CompletedProcess[str], signum: int, run_id: str, name: str) -> None:
    assert res.returncode == CODES[signum], res.stdout + res.stderr
    assert (f"  Interrupted by {signame(signum)}: run {run_id} (rebuild-sandbox '{name}', stopped in state '"
            in res.stderr), res.stderr
    assert "is left interrupted, not finished" in res.stderr
    assert "Traceback" not in res.stderr


def newest_backup_files(sim: SimEnv, name: str) -> dict[str, str]:
    newest = sorted((sim.home / ".nemoclaw" / "rebuild-backups" / name).iterdir())[-1]
    return {p.relative_to(newest).as_posix(): p.read_text(errors="replace") for p in newest.rglob("notes.txt")}


@pytest.mark.parametrize("signum", POLITE, ids=signame)
@pytest.mark.parametrize("pause", ["archive", "restore"])
def test_a_signal_mid_stream_leaves_the_rebuild_to_be_finished_by_the_next_backup_all(env, fleet, pause, signum):
    """The probe's reproducer: Ctrl-C or SIGTERM during the backup stream or the restore upload
    (the old sandbox already gone) exits 130/143, is reported by --check (which writes no journal),
    and the next backup-all finishes the rebuild before it backs anything up: the sandbox is not
    left empty, and no emptied sandbox becomes the newest backup."""
    (name,) = fleet.add()
    trees = {name: fleet.tree(name)}

    run_id, res = signalled_at_pause(env, f"{pause}:{name}", signum, "rebuild-sandbox", name)
    assert_left_interrupted(res, signum, run_id, name)
    before = journals(env)
    assert_noticed(env, fleet, run_id, name)
    assert journals(env) == before  # --check writes nothing, not even its own journal

    backed = nemoclaw(env, "backup-all")
    assert backed.returncode == 0, backed.stdout + backed.stderr
    out = backed.stdout
    resumed_at = out.index(f"  Resuming interrupted run {run_id} (rebuild-sandbox '{name}', stopped in state ")
    assert resumed_at < out.index(f"✓ {name}"), out  # finished before anything is backed up
    assert f"  ✓ Sandbox '{name}' rebuilt successfully" in out
    assert_finished(env, fleet, [name], trees)
    assert any(text == f"notes of {name}\n" for text in newest_backup_files(env, name).values())


# The world-changing states of rebuild-sandbox; the signal arrives as each starts.
CHANGING = ["unpause", "backup", "commit", "delete", "create", "restore", "record"]


@pytest.mark.parametrize("signum", POLITE, ids=signame)
@pytest.mark.parametrize("state", CHANGING)
def test_a_signal_in_each_world_changing_state_leaves_the_rebuild_to_be_finished(env, fleet, state, signum):
    (name,) = fleet.add()
    trees = {name: fleet.tree(name)}
    res = nemoclaw(env, "rebuild-sandbox", name, env={KILL_ENV: f"rebuild-sandbox:{state}:enter::{signame(signum)}"})
    run_id = newest_run(env)
    assert_left_interrupted(res, signum, run_id, name)
    assert f"stopped in state '{state}' at " in res.stderr
    row = next(r for r in json.loads(nemoclaw(env, "runs", "list", "--json").stdout) if r["run"] == run_id)
    assert (row["status"], row["stopped_in"]) == ("interrupted", state)

    up = nemoclaw(env, "upgrade-sandboxes", "--yes")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"  Resuming interrupted run {run_id} (rebuild-sandbox '{name}', stopped in state '{state}' at " in up.stdout
    assert_finished(env, fleet, [name], trees)


@pytest.mark.parametrize("signum", POLITE, ids=signame)
def test_a_signal_in_the_rollback_leaves_it_to_be_finished(env, fleet, signum):
    """The create fails (no such image), the rollback starts and is signalled: the next upgrade
    finishes the rollback (the sandbox is back with its files), then rebuilds it."""
    (name,) = fleet.add()
    trees = {name: fleet.tree(name)}
    res = nemoclaw(env, "rebuild-sandbox", name, "--image", "no-such-image:0",
                   env={KILL_ENV: f"rebuild-sandbox:rollback:enter::{signame(signum)}"})
    run_id = newest_run(env)
    assert_left_interrupted(res, signum, run_id, name)
    assert not fleet.listed(name) or fleet.container(name).attrs["Config"]["Image"] != "no-such-image:0"

    up = nemoclaw(env, "upgrade-sandboxes", "--yes")
    assert up.returncode == 1, up.stdout + up.stderr  # the resumed rebuild ends failed (rolled back)
    assert f"  Resuming interrupted run {run_id} (rebuild-sandbox '{name}', stopped in state 'rollback' at " in up.stdout
    assert f"  Rolled back '{name}'" in up.stderr
    assert f"  ✓ Sandbox '{name}' rebuilt successfully" in up.stdout
    assert_finished(env, fleet, [name], trees)


# --- a damaged journal, another sandbox's backup, an unusable lock path (issue 20) -----------------


def _journal(sim: SimEnv, run_id: str) -> Path:
    return sim.home / ".nemoclaw" / "runs" / f"{run_id}.jsonl"


def _commit_line(path: Path) -> int:
    for no, line in enumerate(path.read_text().splitlines(), 1):
        e = json.loads(line)
        if e["event"] == "state_left" and e["state"] == "commit":
            return no
    raise AssertionError("no commit line")


def test_a_damaged_commit_line_is_never_resumed_on_a_guess(env, fleet):
    """The probe's reproducer: the commit's `state_left` (which holds `committed`) is damaged
    after the delete. The run is damaged: --check and runs show name the line, backup-all refuses
    and commits nothing, abandon prints the commands, and the backup restores by hand."""
    (name,) = fleet.add()
    trees = {name: fleet.tree(name)}
    old_image = fleet.container(name).attrs["Config"]["Image"]
    res = nemoclaw(env, "rebuild-sandbox", name, env={KILL_ENV: "rebuild-sandbox:create:enter"})
    assert res.returncode == -signal.SIGKILL
    run_id = newest_run(env)
    path = _journal(env, run_id)
    no = _commit_line(path)
    lines = path.read_text().splitlines(keepends=True)
    lines[no - 1] = lines[no - 1][:40] + "\n"
    path.write_text("".join(lines))
    backups = sorted((env.home / ".nemoclaw" / "rebuild-backups" / name).iterdir())

    check = nemoclaw(env, "upgrade-sandboxes", "--check")
    assert check.returncode == 1
    assert f"  Run {run_id} (rebuild-sandbox '{name}', stopped in state 'create' at " in check.stdout
    assert f"has a damaged journal (line {no}: not JSON" in check.stdout
    assert "All sandboxes are up to date." not in check.stdout
    shown = nemoclaw(env, "runs", "show", run_id)
    assert f"  (line {no}: damaged, not JSON" in shown.stdout

    refused = nemoclaw(env, "backup-all")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"  Run {run_id} (rebuild-sandbox '{name}'" in refused.stderr
    assert "  Not running backup-all: a damaged run must be given up" in refused.stderr
    assert "✓" not in refused.stdout and "Resuming" not in refused.stdout
    assert sorted((env.home / ".nemoclaw" / "rebuild-backups" / name).iterdir()) == backups
    assert not fleet.listed(name)  # nothing created on a guess

    gone = nemoclaw(env, "runs", "abandon", run_id)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert f"  Its journal is damaged (line {no}: not JSON" in gone.stdout
    assert f"    openshell sandbox create --name {name} --from {old_image}" in gone.stdout.splitlines()
    env.openshell("sandbox", "create", "--name", name, "--from", old_image)
    deadline = time.monotonic() + 60
    while not fleet.listed(name) and time.monotonic() < deadline:
        time.sleep(0.5)
    # The printed restore records the recreated sandbox's new id as its registry identity.
    assert f"    nemoclaw backups restore {name} --from <that timestamp> --recreated" in gone.stdout.splitlines()
    restored = nemoclaw(env, "backups", "restore", name, "--from", backups[-1].name, "--recreated")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert fleet.tree(name) == trees[name]


def test_a_journal_naming_another_sandboxs_backup_is_never_restored_into_this_one(env, fleet):
    alpha, beta = fleet.add(2)
    backed = nemoclaw(env, "backup-all")
    assert backed.returncode == 0, backed.stdout + backed.stderr
    beta_backup = sorted((env.home / ".nemoclaw" / "rebuild-backups" / beta).iterdir())[-1]
    res = nemoclaw(env, "rebuild-sandbox", alpha, env={KILL_ENV: "rebuild-sandbox:restore:enter"})
    assert res.returncode == -signal.SIGKILL
    run_id = newest_run(env)
    path = _journal(env, run_id)
    no = _commit_line(path)
    lines = path.read_text().splitlines(keepends=True)
    e = json.loads(lines[no - 1])
    e["facts"]["committed"] = {alpha: str(beta_backup)}
    lines[no - 1] = json.dumps(e) + "\n"
    path.write_text("".join(lines))

    resumed = nemoclaw(env, "runs", "resume", run_id)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert (f"  Refusing to restore {beta_backup} into sandbox '{alpha}': it is a backup of sandbox '{beta}'."
            in resumed.stderr.splitlines()), resumed.stderr
    assert "rebuilt successfully" not in resumed.stdout
    if fleet.listed(alpha):
        rc, out = fleet.container(alpha).exec_run(["sh", "-c", f"cat {AGENT.dir}/workspace/notes.txt"], user="0")
        assert f"notes of {beta}" not in (out or b"").decode()


def test_a_lock_path_that_is_a_link_fails_the_rebuild_cleanly_and_leaves_nothing_to_carry_out(env, fleet):
    (name,) = fleet.add()
    first = fleet.container(name).id
    lock = env.home / ".nemoclaw" / "orchestrator.lock"
    lock.symlink_to(env.home / "nowhere")
    before = journals(env)
    try:
        res = nemoclaw(env, "rebuild-sandbox", name)
        assert res.returncode == 1
        assert res.stderr.splitlines() == [f"  The lock path {lock} is a symbolic link, not a regular file; "
                                           "move it out of the way and run the command again."]
        assert journals(env) == before
    finally:
        lock.unlink()
    backed = nemoclaw(env, "backup-all")
    assert backed.returncode == 0, backed.stdout + backed.stderr
    assert "Resuming" not in backed.stdout
    assert fleet.container(name).id == first  # the failed rebuild was not carried out later
