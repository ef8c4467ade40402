"""The durable plan of `nemoclaw migrate-openshell` (docs/migration.md).

One migration spans the user's own reinstall of OpenShell (0.0.x -> 0.1.x, which cannot be
upgraded in place: docs/reference/openshell-0.1-migration.md), so no single process, and no
single run's journal, lives through it. The plan is the one record that does: a JSON file in
the store, `~/.nemoclaw/migrations/openshell-0.1.json`, written atomically (temp file, fsync,
rename, fsync of the directory: kernel/atomic.py) at every change, so after a crash it is the
old plan or the whole new one.

It records, per sandbox, what is needed to recreate it without the old gateway: its registry
file, key and row as they were, its agent and agent version, its image, whether it was Stopped
(or in Error), the backup it is recreated from, and where it stands (`backed_up`, `deleted`,
`migrated`, `restored`). The plan's `stage` says where the whole migration stands: `preparing`
(backed up, deletions under way), `waiting` (every sandbox deleted on 0.0.x: waiting for the
user to install OpenShell 0.1), `finishing` (recreating on 0.1.x) or `aborting` (recreating on
0.0.x). A finished or aborted plan is renamed beside it (`openshell-0.1.<time>.done.json`,
`.aborted.json`), never deleted, like the backups it names.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import attrs
import cattrs

from ..kernel.atomic import dump_json, fsync_dir, write_file_atomic
from ..kernel.errors import StoreError

PLAN_DIR = "migrations"
PLAN_FILE = "openshell-0.1.json"
FORMAT = 1

BACKED_UP, DELETED, MIGRATED, RESTORED = "backed_up", "deleted", "migrated", "restored"
PREPARING, WAITING, FINISHING, ABORTING = "preparing", "waiting", "finishing", "aborting"
STAGES = (PREPARING, WAITING, FINISHING, ABORTING)
SANDBOX_STATES = (BACKED_UP, DELETED, MIGRATED, RESTORED)


@attrs.frozen
class PlannedSandbox:
    name: str
    registry: str  # the registry file the row came from (and is written back to)
    key: str
    row: dict[str, Any]  # the row as it was when the plan was recorded
    agent: str
    agent_version: str | None
    image: str  # the image the 0.0.x sandbox ran
    backup: str  # the committed backup directory it is recreated from
    phase: str | None = None  # Stopped or Error when it was not running; None: it ran
    state: str = BACKED_UP
    new_image: str | None = None  # an --image replacement for 0.1.x

    @property
    def stopped(self) -> bool:
        return self.phase == "Stopped"


@attrs.frozen
class MigrationPlan:
    run: str  # the run that recorded it
    created: str
    from_version: str  # the OpenShell 0.0.x release it was recorded on
    stage: str
    sandboxes: list[PlannedSandbox]
    waiting_since: str | None = None  # UTC, run-id format: when every sandbox was deleted
    format: int = FORMAT

    def entry(self, name: str) -> PlannedSandbox | None:
        return next((s for s in self.sandboxes if s.name == name), None)

    def with_entry(self, name: str, **changes: Any) -> "MigrationPlan":
        return attrs.evolve(self, sandboxes=[attrs.evolve(s, **changes) if s.name == name else s for s in self.sandboxes])

    def names(self, *states: str) -> list[str]:
        return [s.name for s in self.sandboxes if not states or s.state in states]


_conv = cattrs.Converter(forbid_extra_keys=True)


class PlanError(StoreError):
    """The plan file cannot be read: never guessed at (a migration half done must not be lost)."""


def plan_path(nemoclaw_dir: Path) -> Path:
    return nemoclaw_dir / PLAN_DIR / PLAN_FILE


def now_stamp() -> str:
    """UTC time in the run-id format (20261129T214500123Z), so it sorts against run ids."""
    t = _dt.datetime.now(_dt.timezone.utc)
    return t.strftime("%Y%m%dT%H%M%S") + f"{t.microsecond // 1000:03d}Z"


def load_plan(nemoclaw_dir: Path) -> MigrationPlan | None:
    """The plan waiting or under way, None when there is none; PlanError when it is damaged."""
    path = plan_path(nemoclaw_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read the migration plan {path}: {exc}") from None
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format') if isinstance(raw, dict) else '?'} is not {FORMAT}")
        plan = _conv.structure(raw, MigrationPlan)
    except (ValueError, TypeError, cattrs.BaseValidationError) as exc:
        raise PlanError(f"the migration plan {path} is damaged ({' '.join(str(exc).split())}); "
                        "it is kept as it is: see docs/migration.md") from None
    if plan.stage not in STAGES or any(s.state not in SANDBOX_STATES for s in plan.sandboxes):
        raise PlanError(f"the migration plan {path} is damaged (an unknown stage or state)")
    return plan


def save_plan(nemoclaw_dir: Path, plan: MigrationPlan) -> None:
    path = plan_path(nemoclaw_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_file_atomic(path, dump_json(_conv.unstructure(plan)), mode=0o600)


def close_plan(nemoclaw_dir: Path, how: str) -> Path | None:
    """Rename the plan beside itself as finished (`done`) or `aborted`; None when there is none."""
    path = plan_path(nemoclaw_dir)
    if not path.exists():
        return None
    kept = path.with_name(f"openshell-0.1.{now_stamp()}.{how}.json")
    os.rename(path, kept)
    fsync_dir(path.parent)
    return kept


def migrating(nemoclaw_dir: Path) -> set[str]:
    """The sandboxes a waiting or unfinished plan holds in their backups (none when it is damaged)."""
    try:
        plan = load_plan(nemoclaw_dir)
    except PlanError:
        return set()
    return {s.name for s in plan.sandboxes if s.state not in (MIGRATED, RESTORED)} if plan else set()


def pending_note(nemoclaw_dir: Path) -> str | None:
    """One sentence for `runs list`, `upgrade-sandboxes --check` and `gateway check` when a
    migration is waiting or under way; None when there is none."""
    try:
        plan = load_plan(nemoclaw_dir)
    except PlanError as exc:
        return f"  {exc}"
    if plan is None:
        return None
    left = [s.name for s in plan.sandboxes if s.state not in (MIGRATED, RESTORED)]
    if plan.stage == WAITING:
        return (f"  A migration to OpenShell 0.1 is waiting: {len(left)} sandbox(es) were deleted on OpenShell "
                f"{plan.from_version} and are kept in their backups ({', '.join(left)}); install OpenShell 0.1 and "
                "run `nemoclaw migrate-openshell` to recreate them (`--abort` on 0.0.x puts them back).")
    return (f"  A migration to OpenShell 0.1 is under way ({plan.stage}; {len(left)} sandbox(es) not yet recreated: "
            f"{', '.join(left) or 'none'}); run `nemoclaw migrate-openshell` to finish it.")
