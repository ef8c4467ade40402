"""The store steps in YAML-only workflows against the OpenShell stand-in and real sandbox
containers on the real Docker engine: backup -> prune_backups -> verify_backups composed by a
user, restore_backup killed in the middle of its upload and finished by the next run, and the
complete example of docs/workflows.md, taken from the page itself, run as a user would copy it.

One simulated host serves the module, with two sandboxes of unique names (other tests on the
same engine have their own `alpha`); each test starts from an empty backup store
and run log, and ends with no run left interrupted.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

import pytest

from orchestrator.adapters.agents.definitions import load_agent
from orchestrator.store import BackupStore
from tests.support.pause_kill import killed_at_pause
from tests.support.sandbox_tree import state_tree_script
from tests.support.simenv import SimEnv

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
AGENT = load_agent("openclaw")
NAME_LABEL = "openshell.ai/sandbox-name"
NAMES = A, B = f"s{uuid.uuid4().hex[:8]}", f"s{uuid.uuid4().hex[:8]}"

ROTATE = """\
name: backup-rotate
summary: Back up every sandbox, keep its newest backup only, and verify what is kept
guard:
  action: backing up registered sandboxes
  command: nemoclaw backup-rotate
initial: registry
states:
  registry: {do: read_registry, next: preflight, branches: {empty: done}}
  preflight: {do: preflight, next: unpause, refuse: refused}
  unpause: {do: unpause_leftovers, resume: retry, next: enumerate}
  enumerate: {do: sandbox_list, next: snapshot, refuse: refused}
  snapshot: {do: snapshot, resume: retry, next: commit}
  commit: {do: commit_backups, resume: snapshot, next: prune, branches: {partial: failed}}
  prune: {do: prune_backups, with: {keep: 1}, resume: retry, next: verify}
  verify: {do: verify_backups, next: done}
"""

RESTORE = """\
name: restore-latest
summary: Put a sandbox back to its newest backup
arguments: [{name: name, required: true}]
initial: restore
states:
  restore: {do: restore_backup, resume: retry, next: done}
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory, docker_client):
    sim = SimEnv((tmp_path_factory.mktemp("storesteps") / "home").resolve())
    sim.home.mkdir()
    sim.up(sandboxes=0)
    for name in NAMES:
        sim.add_sandbox(name)
    workflows = sim.home / ".nemoclaw" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "backup-rotate.yaml").write_text(ROTATE)
    (workflows / "restore-latest.yaml").write_text(RESTORE)
    try:
        yield sim
    finally:
        sim.down()


@pytest.fixture
def sim(host):
    """The module's host with an empty backup store and run log (and no user workflow but ours)."""
    nemoclaw_dir = host.home / ".nemoclaw"
    for sub in ("rebuild-backups", "runs"):
        shutil.rmtree(nemoclaw_dir / sub, ignore_errors=True)
    yield host
    for extra in (nemoclaw_dir / "workflows").glob("*.yaml"):
        if extra.name not in ("backup-rotate.yaml", "restore-latest.yaml"):
            extra.unlink()


def backups(sim: SimEnv, name: str) -> list[str]:
    return [b.timestamp for b in BackupStore(sim.home / ".nemoclaw" / "rebuild-backups", load_agent).list(name)]


def container(sim: SimEnv, docker_client, name: str):
    found = [c for c in docker_client.containers.list(all=True, filters={"label": f"{NAME_LABEL}={name}"})
             if c.labels.get(NAME_LABEL) == name and c.labels.get("openshell.ai/isolation-role") != "supervisor"]
    assert len(found) == 1, f"expected one container of {name}, found {[c.name for c in found]}"
    return found[0]


def sh(sim: SimEnv, docker_client, name: str, script: str) -> str:
    rc, out = container(sim, docker_client, name).exec_run(["sh", "-c", script], user="0")
    text = (out or b"").decode("utf-8", "replace")
    assert rc == 0, f"`{script}` in {name} exited {rc}: {text}"
    return text


def tree(sim: SimEnv, docker_client, name: str) -> list[str]:
    return sh(sim, docker_client, name, state_tree_script(AGENT.dir, AGENT.state_dirs)).splitlines()


def test_backup_prune_verify_composed_in_yaml_keeps_the_newest_backup_of_each_sandbox(sim):
    first = sim.run(["nemoclaw", "backup-rotate"])
    assert first.returncode == 0, first.stdout + first.stderr
    old = {name: backups(sim, name) for name in NAMES}
    assert all(len(ts) == 1 for ts in old.values()), old

    second = sim.run(["nemoclaw", "backup-rotate"])
    assert second.returncode == 0, second.stdout + second.stderr
    out = second.stdout.splitlines()
    assert "  Removed 2 backup(s), kept 2." in out
    store = BackupStore(sim.home / ".nemoclaw" / "rebuild-backups", load_agent)
    for name in NAMES:
        [kept] = store.list(name)
        assert kept.timestamp != old[name][0] and kept.timestamp > old[name][0]
        assert f"  Removed {name} {old[name][0]}" in out
        assert f"  ✓ {name} {kept.timestamp}: {len(kept.manifest.files)} files match the manifest" in out
        assert store.verify(kept) is None
        assert not (sim.home / ".nemoclaw" / "rebuild-backups" / name / old[name][0]).exists()


def test_restore_backup_killed_mid_upload_is_finished_by_the_next_run_with_nothing_lost(sim, docker_client):
    made = sim.run(["nemoclaw", "backup-all"])
    assert made.returncode == 0, made.stdout + made.stderr
    [ts] = backups(sim, A)
    before = tree(sim, docker_client, A)
    sh(sim, docker_client, A, f"cd {AGENT.dir} && echo changed > workspace/SOUL.md && "
                                    "head -c 200000 /dev/urandom > workspace/new.bin && rm -rf memory")
    assert tree(sim, docker_client, A) != before

    run_id = killed_at_pause([shutil.which("nemoclaw", path=sim.env["PATH"]), "restore-latest", A], sim.env,
                             f"restore:{A}", sim.home)
    row = next(r for r in json.loads(sim.run(["nemoclaw", "runs", "list", "--json"]).stdout) if r["run"] == run_id)
    assert row["status"] == "interrupted" and row["stopped_in"] == "restore"
    assert tree(sim, docker_client, A) != before  # half written
    # A newer slot appears meanwhile (invalid: its manifest names another time), so `latest` now
    # means a backup that is refused: the resumed run restores the one the killed run chose.
    newer = ts[:-4] + "999Z"
    shutil.copytree(sim.home / ".nemoclaw" / "rebuild-backups" / A / ts,
                    sim.home / ".nemoclaw" / "rebuild-backups" / A / newer)
    refused = sim.run(["nemoclaw", "backups", "restore", A, "--dry-run"])
    assert refused.returncode == 1 and f"its newest backup {newer} is invalid" in refused.stderr

    resumed = sim.run(["nemoclaw", "runs", "resume", run_id])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    out = resumed.stdout.splitlines()
    assert f"  Restoring '{A}' again from {ts}, the backup the interrupted run was restoring." in out
    assert any(line.startswith(f"  ✓ Restored '{A}' from {ts}; ") for line in out), resumed.stdout
    assert tree(sim, docker_client, A) == before
    assert backups(sim, A) == [ts]  # the backup itself is untouched and still valid


def test_a_killed_restore_given_up_says_how_to_finish_it_by_hand_and_that_works(sim, docker_client):
    made = sim.run(["nemoclaw", "backup-all"])
    assert made.returncode == 0, made.stdout + made.stderr
    [ts] = backups(sim, B)
    before = tree(sim, docker_client, B)
    sh(sim, docker_client, B, f"cd {AGENT.dir} && echo changed > workspace/SOUL.md")
    run_id = killed_at_pause([shutil.which("nemoclaw", path=sim.env["PATH"]), "restore-latest", B], sim.env,
                             f"restore:{B}", sim.home)
    gone = sim.run(["nemoclaw", "runs", "abandon", run_id])
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert any(line.startswith("  State 'restore' was restoring a backup into the sandbox: its restored directories "
                               "may be half written.") for line in gone.stdout.splitlines()), gone.stdout
    shown = sim.run(["nemoclaw", "runs", "show", run_id])
    [chosen] = [line for line in shown.stdout.splitlines() if line.split()[1:2] == ["backup_restore_chosen"]]
    assert ts in chosen, chosen

    by_hand = sim.run(["nemoclaw", "backups", "restore", B, "--from", ts])
    assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr
    assert tree(sim, docker_client, B) == before


def test_restore_backup_without_a_backup_or_a_sandbox_fails_with_one_sentence(sim):
    res = sim.run(["nemoclaw", "restore-latest", A])
    assert res.returncode == 1
    assert f"  No backup of '{A}'." in res.stderr.splitlines(), res.stderr

    backed = sim.run(["nemoclaw", "backup-all"])
    assert backed.returncode == 0, backed.stdout + backed.stderr
    backup = next((sim.home / ".nemoclaw" / "rebuild-backups" / A).iterdir())
    shutil.copytree(backup.parent, backup.parent.with_name("ghost"))
    manifest = backup.parent.with_name("ghost") / backup.name / "rebuild-manifest.json"
    manifest.write_text(manifest.read_text().replace(f'"{A}"', '"ghost"'))
    res = sim.run(["nemoclaw", "restore-latest", "ghost"])
    assert res.returncode == 1, res.stdout + res.stderr
    [line] = [line for line in res.stderr.splitlines() if "ghost" in line]
    assert line.startswith("  Cannot restore 'ghost': "), res.stderr
    assert "Traceback" not in res.stderr


def docs_example() -> tuple[str, str]:
    """The YAML block under "A complete example" in docs/workflows.md, and its file name."""
    page = (ROOT / "docs" / "workflows.md").read_text()
    section = page.split("## A complete example", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "docs/workflows.md has no yaml block under 'A complete example'"
    text = block.group(1)
    name = re.search(r"^name: ([a-z][a-z0-9-]*)", text, re.M)
    assert name, "the example has no name"
    return name.group(1), text


def test_the_docs_complete_example_runs_and_backs_up_a_sandbox_a_killed_run_left_frozen(sim, docker_client):
    """Copied from the page as it is, it validates and runs; a sandbox that a killed backup left
    frozen (the run given up, so nothing resumes it) is unpaused and backed up, not skipped."""
    name, text = docs_example()
    (sim.home / ".nemoclaw" / "workflows" / f"{name}.yaml").write_text(text)
    valid = sim.run(["nemoclaw", "workflows", "validate", str(sim.home / ".nemoclaw" / "workflows" / f"{name}.yaml")])
    assert valid.returncode == 0, valid.stdout + valid.stderr

    exe = shutil.which("nemoclaw", path=sim.env["PATH"])
    run_id = killed_at_pause([exe, "backup-all"], sim.env, f"archive:{A}", sim.home)
    gone = sim.run(["nemoclaw", "runs", "abandon", run_id])
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert container(sim, docker_client, A).status == "paused"

    res = sim.run(["nemoclaw", name])
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"interrupted run {run_id} had paused it." in res.stdout
    assert container(sim, docker_client, A).status == "running"
    for sandbox in NAMES:
        assert len(backups(sim, sandbox)) == 1, res.stdout
    assert "  Pre-upgrade backup: 2 backed up, 0 failed, 0 skipped" in res.stdout.splitlines()
