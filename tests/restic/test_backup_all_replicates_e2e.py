"""End to end on the real Docker engine with the OpenShell stand-in: `nemoclaw backup-all` with
NEMOCLAW_BACKUP_REPOSITORY set copies each committed backup off-host (its `replicate` state); a
repository that is not there leaves the backups committed and ends the run incomplete (exit 1),
or warns and exits 0 with `--replicate best-effort`; a run killed on entering `replicate` is
finished by the next; a new host recovers a sandbox's backup with `backups pull`."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.restic_repo import make_setup

from .helpers import tree

pytestmark = pytest.mark.docker


def test_backup_all_copies_off_host_and_a_new_host_pulls_it(sim, tmp_path):
    setup = make_setup(tmp_path, home=sim.home)
    env = {**sim.env, **setup.env(), "PATH": f"{setup.bin_dir}:{sim.env['PATH']}"}

    def nemoclaw(*args, **extra):
        return sim.run(["nemoclaw", *args], env={**env, **extra})

    assert nemoclaw("backups", "init-remote").returncode == 0
    first = nemoclaw("backup-all")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Copying 2 backup(s) off-host to" in first.stdout and first.stdout.count("copied off-host as snapshot") == 2
    rows = json.loads(nemoclaw("backups", "list", "--remote", "--json").stdout)["backups"]
    assert len(rows) == 2 and all(r["local"] and r["host"] == "host-a" for r in rows)
    as_json = json.loads(nemoclaw("backup-all", "--json").stdout)["summary"]
    assert len(as_json["backed_up"]) == 2 and as_json["failed"] == []
    assert [c["snapshot"] is not None for c in as_json["off_host"]["copies"]].count(True) == 2
    assert as_json["off_host"]["repository"] == setup.location and as_json["off_host"]["failed"] == []
    rows = json.loads(nemoclaw("backups", "list", "--remote", "--json").stdout)["backups"]
    assert len(rows) == 4 and all(r["local"] and r["host"] == "host-a" for r in rows)

    # The repository is gone: the backups are committed all the same, the run ends incomplete.
    missing = nemoclaw("backup-all", NEMOCLAW_BACKUP_REPOSITORY=str(tmp_path / "not-there"))
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert "There is no restic repository at" in missing.stderr
    assert "2 backup(s) are committed locally but not off-host" in missing.stderr
    local = json.loads(nemoclaw("backups", "list", "--json").stdout)["backups"]
    assert len(local) == 6
    lenient = nemoclaw("backup-all", "--replicate", "best-effort", NEMOCLAW_BACKUP_REPOSITORY=str(tmp_path / "not-there"))
    assert lenient.returncode == 0 and "committed locally only (--replicate best-effort)" in lenient.stderr

    # Killed on entering `replicate`: the next run copies what that one and the failed ones did not.
    killed = nemoclaw("backup-all", NEMOCLAW_TEST_KILL_AT="backup-all:replicate:enter")
    assert killed.returncode < 0 or killed.returncode == 137, killed
    again = nemoclaw("backup-all")
    assert again.returncode == 0, again.stdout + again.stderr
    local = json.loads(nemoclaw("backups", "list", "--json").stdout)["backups"]
    remote = json.loads(nemoclaw("backups", "list", "--remote", "--json").stdout)["backups"]
    assert len(local) == 12 and len(remote) == 12 and all(r["local"] for r in remote)
    assert not any(setup.password in a for a in setup.argvs())

    # A host that lost everything: pull the newest backup of a sandbox into an empty store.
    sandbox = remote[0]["sandbox"]
    new_home = tmp_path / "new-host"
    pulled = nemoclaw("backups", "pull", sandbox, HOME=str(new_home), NEMOCLAW_BACKUP_HOST="host-b")
    assert pulled.returncode == 0, pulled.stderr
    newest = next(b for b in local if b["sandbox"] == sandbox)
    assert tree(new_home / ".nemoclaw" / "rebuild-backups" / sandbox / newest["timestamp"]) == tree(
        sim.home / ".nemoclaw" / "rebuild-backups" / sandbox / newest["timestamp"])
    for dirpath, _, names in os.walk(sim.home / ".nemoclaw"):
        for name in names:
            assert setup.password.encode() not in open(os.path.join(dirpath, name), "rb").read()
