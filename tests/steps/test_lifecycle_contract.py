"""In process: the lifecycle commands as the CLI of each release line takes them, and journals
written by older releases (a stopped sandbox was then started for its backup, and the facts
said so) still load into today's facts, so an interrupted run of theirs can be resumed."""

from __future__ import annotations

import pytest

from orchestrator.adapters.openshell.lifecycle import lifecycle_args
from orchestrator.engine import facts as engine_facts
from orchestrator.steps import facts  # noqa: F401 - declares the built-in facts


@pytest.mark.parametrize("cli, ws", [(None, []), ("0.0.44", []), ("0.0.116", []), ("0.1.0-pre.3", ["--workspace", "default"]),
                                     ("0.1.5", ["--workspace", "default"])])
def test_lifecycle_commands_select_the_default_workspace_on_0_1_x(cli, ws):
    assert lifecycle_args("create", "a", image="img:1", cli_version=cli) == ["sandbox", "create", *ws, "--name", "a",
                                                                            "--from", "img:1"]
    for verb in ("delete", "start", "stop"):
        assert lifecycle_args(verb, "a", cli_version=cli) == ["sandbox", verb, *ws, "a"]
    with pytest.raises(ValueError):
        lifecycle_args("restart", "a", cli_version=cli)


def test_facts_of_an_older_release_that_started_stopped_sandboxes_still_load():
    staged = {"name": "s", "timestamp": "20261201T000000Z", "staged": "/x", "dest": "/y", "error": None, "bytes": 1,
              "files": 1, "dirs": 1, "empty": False, "started": True, "frozen_seconds": None, "scope": "home"}
    snap = engine_facts.load("snapshot", {"backups": [staged], "skipped": []})
    assert snap.backups[0].name == "s" and snap.backups[0].phase is None
    report = engine_facts.load("backup_report", {
        "backed_up": [{"sandbox": "s", "path": "/y", "timestamp": "t", "bytes": 1, "files": 1, "empty": False,
                       "scope": "home", "frozen_seconds": None, "started_and_returned": True}],
        "failed": [], "skipped": [], "started_and_returned": ["s"]})
    assert report.backed_up[0].phase is None
    plan = engine_facts.load("rebuild_plan", {"name": "s", "agent": "openclaw", "current": "1.0.0", "expected": "2.0.0",
                                              "previous_image": "i:1", "target_image": "i:2", "from_backup": None})
    assert plan.phase is None  # resumed to its end, it is not stopped (it was running, or started by that release)
    rows = engine_facts.load("version_report", {"stale": [{"sandbox": "s", "current": "1.0.0", "expected": "2.0.0",
                                                           "running": False}], "unknown": [], "current": [], "missing": []})
    assert rows.stale[0].phase is None


def test_only_the_retired_fields_are_let_through_any_other_unknown_key_is_damage():
    import pytest

    staged = {"name": "s", "timestamp": "t", "staged": "/x", "dest": "/y", "started": True, "surprise": 1}
    with pytest.raises(ValueError, match="surprise"):
        engine_facts.load("snapshot", {"backups": [staged], "skipped": []})
