"""The store steps `prune_backups` and `verify_backups` in a user's YAML-only workflow, run in
process against a real backup store in a scratch home (no Docker: these steps only read and
write ~/.nemoclaw/rebuild-backups/). What they find wrong fails the run with one sentence; what
they keep verifies. `restore_backup` (it needs a sandbox) and the kills: tests/e2e/test_store_steps_e2e.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.adapters.agents.definitions import load_agent
from orchestrator.store import BackupStore
from orchestrator.store.lock import WriterLock, held_here

from tests.store.test_store_untrusted import edit_manifest, make_backup
from tests.support.cli import NEMOCLAW, Invoked, invoke, program
from tests.support.pause_kill import killed_at_pause

TS = [f"2026-05-0{d}T00-00-00-000Z" for d in range(1, 6)]  # oldest first

ROTATE = """\
name: rotate-backups
summary: Keep the newest backups of each sandbox, then check what is kept
options:
  json: {type: bool, default: false, help: Print a machine-readable summary on stdout.}
initial: prune
states:
  prune:
    do: prune_backups
    with: {keep: 2}
    resume: retry
    next: verify
  verify:
    do: verify_backups
    with: {all: true}
    next: done
"""

VERIFY_ALL = """\
name: verify-all
summary: Verify every backup
initial: verify
states:
  verify: {do: verify_backups, with: {all: true}, next: done}
"""

CHECK = """\
name: check-backups
summary: Verify the newest backup of a sandbox
arguments: [{name: name, required: true}]
initial: verify
states:
  verify:
    do: verify_backups
    with: {sandbox: "{name}"}
    next: done
"""


RESTORE = """\
name: restore-latest
summary: Put a sandbox back to its newest backup
arguments: [{name: name, required: true}]
options:
  check: {type: bool, default: false, help: Change nothing.}
read_only_when: check
initial: restore
states:
  restore: {do: restore_backup, resume: retry, next: done}
"""


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    (h / ".nemoclaw" / "workflows").mkdir(parents=True)
    (h / ".nemoclaw" / "workflows" / "rotate-backups.yaml").write_text(ROTATE)
    (h / ".nemoclaw" / "workflows" / "check-backups.yaml").write_text(CHECK)
    (h / ".nemoclaw" / "workflows" / "verify-all.yaml").write_text(VERIFY_ALL)
    (h / ".nemoclaw" / "workflows" / "restore-latest.yaml").write_text(RESTORE)
    return h


def root(home: Path) -> Path:
    return home / ".nemoclaw" / "rebuild-backups"


def nemoclaw(home: Path, *args: str) -> Invoked:
    return invoke(*args, env={"HOME": str(home), "NEMOCLAW_WORKFLOWS_PATH": ""})


def stamps(home: Path, sandbox: str) -> list[str]:
    return [b.timestamp for b in BackupStore(root(home), load_agent).list(sandbox)]


def test_prune_then_verify_keeps_the_newest_and_checks_every_kept_file(home):
    for ts in TS[:4]:
        make_backup(root(home), "alpha", ts)
    make_backup(root(home), "beta", TS[0])

    res = nemoclaw(home, "rotate-backups")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout.splitlines()
    assert f"  Removed alpha {TS[0]}" in out and f"  Removed alpha {TS[1]}" in out
    assert "  Removed 2 backup(s), kept 3." in out
    for ts in (TS[2], TS[3]):
        assert f"  ✓ alpha {ts}: 3 files match the manifest" in out
    assert f"  ✓ beta {TS[0]}: 3 files match the manifest" in out
    assert stamps(home, "alpha") == [TS[3], TS[2]] and stamps(home, "beta") == [TS[0]]
    store = BackupStore(root(home), load_agent)
    assert all(store.verify(b) is None for b in store.list())


def test_verify_fails_naming_a_damaged_backup_and_still_checks_the_others(home):
    make_backup(root(home), "alpha", TS[0])
    make_backup(root(home), "beta", TS[0])
    damaged = make_backup(root(home), "alpha", TS[1])
    (damaged / "workspace" / "SOUL.md").write_bytes(b"SOUL\n")  # same size, other bytes

    res = nemoclaw(home, "verify-all")
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"  ✓ beta {TS[0]}: 3 files match the manifest" in res.stdout.splitlines()
    assert f"  ✓ alpha {TS[0]}: 3 files match the manifest" in res.stdout.splitlines()
    err = res.stderr.splitlines()
    assert any(line.startswith(f"  ✗ alpha {TS[1]}: workspace/SOUL.md") for line in err), res.stderr
    assert f"  1 of 3 backup(s) failed verification: alpha {TS[1]} ({damaged})." in err
    assert "Traceback" not in res.stderr


def test_prune_keeps_the_newest_verified_backup_and_fails_on_a_damaged_kept_one(home):
    for ts in TS[:3]:
        make_backup(root(home), "alpha", ts)
    for ts in TS[3:5]:
        damaged = make_backup(root(home), "alpha", ts)
        (damaged / "credentials" / "token").write_bytes(b"SECRET\n")

    res = nemoclaw(home, "rotate-backups")
    assert res.returncode == 1, res.stdout + res.stderr
    out = res.stdout.splitlines()
    assert f"  Kept alpha {TS[2]}: the newest backup that verifies" in out
    assert f"  Removed alpha {TS[0]}" in out and f"  Removed alpha {TS[1]}" in out
    assert stamps(home, "alpha") == [TS[4], TS[3], TS[2]]
    assert (f"  2 kept backup(s) are damaged (alpha {TS[4]}, alpha {TS[3]}): see `nemoclaw backups verify --all`, "
            "and remove or replace them.") in res.stderr.splitlines()
    assert "✓" not in res.stdout  # the run failed in the prune: nothing was verified after it


def test_an_invalid_newest_backup_fails_verify_and_is_never_replaced_by_an_older_one(home):
    make_backup(root(home), "alpha", TS[0])
    newest = make_backup(root(home), "alpha", TS[1])
    edit_manifest(newest, lambda d: d | {"sandboxName": "beta"})

    res = nemoclaw(home, "check-backups", "alpha")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "✓" not in res.stdout
    assert any(line.startswith(f"  ✗ alpha {TS[1]}: invalid backup: ") for line in res.stderr.splitlines())
    assert f"  1 of 1 backup(s) failed verification: alpha {TS[1]} ({newest})." in res.stderr.splitlines()


def test_a_sandbox_without_backups_fails_verify_with_one_sentence(home):
    make_backup(root(home), "alpha", TS[0])
    res = nemoclaw(home, "check-backups", "nobody")
    assert res.returncode == 1
    assert res.stderr.splitlines() == ["  No backups of 'nobody' found."]


def test_prune_without_keep_or_without_the_run_lock_changes_nothing(home):
    for ts in TS[:3]:
        make_backup(root(home), "alpha", ts)
    wf = home / ".nemoclaw" / "workflows"
    (wf / "prune-all.yaml").write_text(ROTATE.replace("rotate-backups", "prune-all").replace("    with: {keep: 2}\n", ""))
    res = nemoclaw(home, "prune-all")
    assert res.returncode == 2
    assert "  Step 'prune_backups' needs the number of backups to keep: add `with: {keep: N}`." in res.stderr.splitlines()

    (wf / "prune-unlocked.yaml").write_text(ROTATE.replace("rotate-backups", "prune-unlocked")
                                            .replace("initial: prune", "lock: false\ninitial: prune"))
    res = nemoclaw(home, "prune-unlocked")
    assert res.returncode == 1
    assert ("  Step 'prune_backups' changes backups or sandboxes, so its run must hold the writer lock; remove "
            "`lock: false` from workflow 'prune-unlocked'.") in res.stderr.splitlines()
    assert stamps(home, "alpha") == [TS[2], TS[1], TS[0]]


def test_a_run_holding_the_lock_is_seen_as_the_holder_and_another_process_is_not(home, tmp_path):
    lock_file = tmp_path / "orchestrator.lock"
    assert not held_here(lock_file)
    with WriterLock(lock_file, "run-1"):
        assert held_here(lock_file)
        pid = os.fork()
        if pid == 0:  # another process sees the same file and is not its holder
            os._exit(0 if not held_here(lock_file) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert not held_here(lock_file)


def test_a_prune_killed_between_two_removals_is_finished_by_the_next_run_with_nothing_kept_lost(home):
    """A real `nemoclaw` process, SIGKILLed inside prune_backups right after its first removal
    (the test hook `prune:alpha`): the run is left interrupted with one old backup still there;
    `runs resume` prunes again, ending with exactly the backups a whole prune keeps, all verified."""
    for ts in TS[:4]:
        make_backup(root(home), "alpha", ts)
    env = {"HOME": str(home), "NEMOCLAW_WORKFLOWS_PATH": "", "DOCKER_HOST": f"unix://{home}/no-engine.sock"}
    run_id = killed_at_pause([NEMOCLAW, "rotate-backups"], env, "prune:alpha", home)
    left = stamps(home, "alpha")
    assert TS[3] in left and TS[2] in left and len(left) == 3, left  # one removed, one still to remove

    resumed = program("runs", "resume", run_id, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"  Resuming interrupted run {run_id} (rotate-backups, stopped in state 'prune' at " in resumed.stdout
    assert f"  ✓ alpha {TS[3]}: 3 files match the manifest" in resumed.stdout.splitlines()
    assert stamps(home, "alpha") == [TS[3], TS[2]]
    assert not [p for p in (root(home) / "alpha").iterdir() if p.name.startswith(".trash-")]
    store = BackupStore(root(home), load_agent)
    assert all(store.verify(b) is None for b in store.list("alpha"))
    again = program("runs", "resume", run_id, env=env)
    assert again.returncode == 2 and "is finished, not interrupted" in again.stderr


def test_restore_of_an_invalid_newest_backup_is_refused_and_names_the_timestamp_that_restores_the_valid_one(home):
    """Refused before any sandbox is looked up (no Docker here): the newest slot is invalid, so it
    never silently restores the older one, and says how to ask for it in the workflow."""
    make_backup(root(home), "alpha", TS[0])
    edit_manifest(make_backup(root(home), "alpha", TS[1]), lambda d: d | {"version": 2})
    res = nemoclaw(home, "restore-latest", "alpha")
    assert res.returncode == 1, res.stdout + res.stderr
    [line] = res.stderr.splitlines()
    assert line.startswith(f"  Refusing to restore 'alpha': its newest backup {TS[1]} is invalid: ")
    assert line.endswith(f"; the newest valid backup is {TS[0]}: to restore it, set `timestamp: {TS[0]}` in this "
                         "state's `with:`.")

    damaged = make_backup(root(home), "beta", TS[0])
    (damaged / "workspace" / "SOUL.md").write_bytes(b"SOUL\n")
    res = nemoclaw(home, "restore-latest", "beta")
    assert res.returncode == 1
    assert res.stderr.splitlines()[0].startswith("  Refusing to restore a damaged backup: workspace/SOUL.md")


def test_a_read_only_run_refuses_to_restore(home):
    make_backup(root(home), "alpha", TS[0])
    res = nemoclaw(home, "restore-latest", "alpha", "--check")
    assert res.returncode == 1
    # The engine refuses every mutating step of a read-only run before it starts.
    assert "  Refusing to run 'restore_backup' (state 'restore'): this run is read-only (--check)." in res.stderr.splitlines()


def test_the_backup_rotate_example_of_docs_backups_md_is_a_valid_workflow(tmp_path):
    page = (Path(__file__).resolve().parents[2] / "docs" / "backups.md").read_text()
    block = page.split("## In a workflow", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "backup-rotate.yaml"
    path.write_text(block)
    res = invoke("workflows", "validate", str(path), env={"HOME": str(tmp_path)})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "do: prune_backups" in block and "do: verify_backups" in block and "do: unpause_leftovers" in block


def test_prune_and_verify_report_in_the_runs_json_summary(home):
    for ts in TS[:3]:
        make_backup(root(home), "alpha", ts)
    res = nemoclaw(home, "rotate-backups", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["terminal"] == "done"
    pruned = doc["summary"]["pruned"]
    assert pruned["removed"] == [{"sandbox": "alpha", "timestamp": TS[0]}]
    assert pruned["kept"] == [{"sandbox": "alpha", "timestamp": TS[2]}, {"sandbox": "alpha", "timestamp": TS[1]}]
    assert pruned["protected"] == [] and pruned["damaged"] == []
    verified = doc["summary"]["verified"]
    assert [(v["timestamp"], v["ok"], v["problem"]) for v in verified] == [(TS[2], True, None), (TS[1], True, None)]
    assert "Removed alpha" in res.stderr  # progress goes to stderr in --json mode


def test_a_killed_prune_given_up_says_what_is_left_and_the_next_prune_finishes_it(home):
    for ts in TS[:4]:
        make_backup(root(home), "alpha", ts)
    env = {"HOME": str(home), "NEMOCLAW_WORKFLOWS_PATH": "", "DOCKER_HOST": f"unix://{home}/no-engine.sock"}
    run_id = killed_at_pause([NEMOCLAW, "rotate-backups"], env, "prune:alpha", home)
    gone = program("runs", "abandon", run_id, env=env)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert ("  State 'prune' was pruning backups: what it removed is gone whole, the older backups it had not removed "
            "yet are still there and valid; `nemoclaw backups prune --keep N` finishes the job.") in gone.stdout.splitlines()
    assert len(stamps(home, "alpha")) == 3
    pruned = program("backups", "prune", "--keep", "2", env=env)
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert stamps(home, "alpha") == [TS[3], TS[2]]
