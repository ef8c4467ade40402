"""`pull_backup` in a user's own YAML workflow (~/.nemoclaw/workflows/): the step pulls a
sandbox's newest copy into the store through the run's staging area; the run's journal holds
the fact it wrote and never the password."""

from __future__ import annotations

import json

from tests.support.cli import invoke
from tests.support.restic_repo import make_setup

from .helpers import TS1, TS2, files_of, make_backup, tree

WORKFLOW = """\
name: recover-copy
summary: Pull a sandbox's off-host copy into the local store
arguments:
  - name: name
    help: The sandbox.
initial: pull
states:
  pull:
    do: pull_backup
    resume: retry
    next: done
"""


def test_a_yaml_workflow_pulls_the_newest_copy(local_repo, tmp_path):
    make_backup(local_repo.home, "alpha", TS1, files_of("s1"))
    newest = make_backup(local_repo.home, "alpha", TS2, files_of("s2"))
    invoke("backups", "init-remote", env=local_repo.env())
    assert invoke("backups", "push", env=local_repo.env()).returncode == 0
    new_host = make_setup(tmp_path / "b", location=local_repo.location, home=tmp_path / "new-host")
    (new_host.home / ".nemoclaw" / "workflows").mkdir(parents=True)
    (new_host.home / ".nemoclaw" / "workflows" / "recover-copy.yaml").write_text(WORKFLOW)
    env = new_host.env(RESTIC_PASSWORD_FILE=local_repo.env()["RESTIC_PASSWORD_FILE"], NEMOCLAW_BACKUP_HOST="host-b")
    out = invoke("recover-copy", "alpha", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"✓ Pulled 'alpha' {TS2}; its files match its manifest" in out.stdout
    pulled = new_host.home / ".nemoclaw" / "rebuild-backups" / "alpha" / TS2
    assert tree(pulled) == tree(newest)
    journals = list((new_host.home / ".nemoclaw" / "runs").glob("*.jsonl"))
    assert journals
    text = "".join(j.read_text() for j in journals)
    assert local_repo.password not in text
    facts = [json.loads(line) for line in text.splitlines() if '"pulled"' in line]
    assert facts and str(pulled) in json.dumps(facts)
