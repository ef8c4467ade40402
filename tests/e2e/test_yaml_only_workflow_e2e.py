"""A new guarded workflow is added by writing YAML only: dropped into ~/.nemoclaw/workflows/,
it is `nemoclaw <name>`, with its options and help, and runs the built-in steps end to end."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.docker

WORKFLOW = """\
name: backup-quick
summary: Back up running sandboxes two at a time, all or nothing
description: A site's own variant of backup-all, written without any Python.
options:
  parallel: {type: int, default: 2, help: Sandboxes at once.}
  strict: {type: bool, default: true, help: Commit nothing unless every sandbox succeeds.}
guard:
  action: backing up registered sandboxes
  command: nemoclaw backup-quick
initial: registry
states:
  registry:
    do: read_registry
    with: {empty_message: "  Nothing registered."}
    next: preflight
    branches: {empty: done}
  preflight:
    do: preflight
    next: listing
    refuse: refused
  listing:
    do: sandbox_list
    next: copy
    refuse: refused
    retry: {attempts: 2, backoff: {initial: 0.5, max: 1}, errors: [transient, timeout]}
  copy:
    do: snapshot
    resume: retry
    next: commit
  commit:
    do: commit_backups
    resume: copy
    next: done
    branches: {partial: failed}
"""


@pytest.mark.parametrize("sim", [{"sandboxes": 2}], indirect=True)
def test_yaml_only_workflow_is_a_command_and_runs(sim):
    wf_dir = sim.home / ".nemoclaw" / "workflows"
    wf_dir.mkdir(parents=True)
    (wf_dir / "backup-quick.yaml").write_text(WORKFLOW)

    listed = json.loads(sim.run(["nemoclaw", "workflows", "list", "--json"]).stdout)
    row = next(r for r in listed if r["name"] == "backup-quick")
    assert row["valid"] and row["guarded"] and not row["builtin"]

    help_text = sim.run(["nemoclaw", "backup-quick", "--help"]).stdout
    assert "Back up running sandboxes two at a time, all or nothing" in help_text
    assert "--parallel INTEGER" in help_text and "--strict" in help_text

    r = sim.run(["nemoclaw", "backup-quick"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Pre-upgrade backup: 2 backed up, 0 failed, 0 skipped" in r.stdout
    for name in ("alpha", "beta"):
        [backup] = list((sim.home / ".nemoclaw" / "rebuild-backups" / name).iterdir())
        assert (backup / "rebuild-manifest.json").is_file()

    graph = sim.run(["nemoclaw", "workflows", "graph", "backup-quick"])
    assert graph.returncode == 0 and "preflight --> refused: refuse" in graph.stdout
