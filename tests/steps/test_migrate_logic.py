"""migrate-openshell's decisions and its plan file, in process (the e2e tests are in
tests/e2e/test_migrate_e2e.py)."""

from __future__ import annotations

import json

import attrs
import pytest

from orchestrator.kernel.errors import StepError
from orchestrator.steps.migrate import decide_phase, parse_images, unusable_on_01
from orchestrator.store.migration_plan import (
    DELETED, MIGRATED, PREPARING, WAITING, MigrationPlan, PlanError, PlannedSandbox, close_plan, load_plan,
    pending_note, plan_path, save_plan,
)

RUN = "20261207T230000000Z"


def plan(stage: str = WAITING, waiting_since: str | None = "20261207T220000000Z") -> MigrationPlan:
    box = PlannedSandbox("alpha", "/h/.nemoclaw/sandboxes.json", "alpha", {"name": "alpha", "x": 1}, "openclaw",
                         "2026.5.22", "nemoclaw-sim/openclaw:2026.5.22", "/h/.nemoclaw/rebuild-backups/alpha/t",
                         phase="Stopped", state=DELETED)
    return MigrationPlan("r1", "20261207T210000000Z", "0.0.116", stage, [box], waiting_since=waiting_since)


@pytest.mark.parametrize("line, p, abort, expected", [
    ("0.0.x", None, False, "prepare"),
    ("0.0.x", None, True, "abort_nothing"),
    ("0.0.x", plan(PREPARING, None), False, "delete"),
    ("0.0.x", plan(), False, "waiting"),
    ("0.0.x", plan(), "resumed", "announced"),
    ("0.0.x", plan(), True, "abort"),
    ("0.1.x", plan(), False, "finish"),
    ("0.1.x", plan(), True, "abort_too_late"),
    ("0.1.x", None, False, "none"),
    ("0.2.x", plan(), False, "unknown_line"),
    (None, None, False, "unknown_line"),
])
def test_the_phase_follows_the_release_line_and_the_plan(line, p, abort, expected):
    resumed = abort == "resumed"
    assert decide_phase(line, p, abort=abort is True, resumed_here=resumed) == expected


def test_image_replacements_parse_and_a_bad_one_is_a_usage_error():
    assert parse_images("a=img:1,b=reg/x@sha256:00 c=y") == {"a": "img:1", "b": "reg/x@sha256:00", "c": "y"}
    assert parse_images(None) == {}
    with pytest.raises(StepError) as err:
        parse_images("a")
    assert err.value.exit_code == 2 and "NAME=REF" in str(err.value)


def test_a_dockerfile_built_image_is_unusable_on_01():
    assert unusable_on_01("openshell/sandbox-from:1733600000")
    assert not unusable_on_01("nemoclaw-sim/openclaw:2026.5.22")


def test_the_plan_round_trips_keeps_the_row_and_is_closed_beside_itself(tmp_path):
    nd = tmp_path / ".nemoclaw"
    assert load_plan(nd) is None and pending_note(nd) is None
    p = plan()
    save_plan(nd, p)
    assert load_plan(nd) == p
    assert plan_path(nd).stat().st_mode & 0o777 == 0o600
    assert "waiting" in pending_note(nd) and "alpha" in pending_note(nd)
    done = p.with_entry("alpha", state=MIGRATED)
    assert done.entry("alpha").state == MIGRATED and p.entry("alpha").state == DELETED
    save_plan(nd, done)
    kept = close_plan(nd, "done")
    assert kept is not None and kept.name.endswith(".done.json") and not plan_path(nd).exists()
    assert json.loads(kept.read_text())["sandboxes"][0]["row"] == {"name": "alpha", "x": 1}


@pytest.mark.parametrize("text", ["{", '{"format": 99}', '{"format": 1, "run": 3}', "[]"])
def test_a_damaged_plan_is_an_error_never_no_plan(tmp_path, text):
    nd = tmp_path / ".nemoclaw"
    plan_path(nd).parent.mkdir(parents=True)
    plan_path(nd).write_text(text)
    with pytest.raises(PlanError) as err:
        load_plan(nd)
    assert str(plan_path(nd)) in str(err.value)
    assert "damaged" in pending_note(nd)


def test_an_unknown_state_is_damage(tmp_path):
    nd = tmp_path / ".nemoclaw"
    p = plan()
    save_plan(nd, attrs.evolve(p, sandboxes=[attrs.evolve(p.sandboxes[0], state="gone")]))
    with pytest.raises(PlanError):
        load_plan(nd)
