"""The facts of `nemoclaw migrate-openshell` (steps/migrate.py), declared apart from the
built-in page (steps/facts.py) so the two can change independently.

| fact | type | written by | read by |
|---|---|---|---|
| to_migrate | list[str] | migration_items | a foreach's items |
| migration_report | MigrationReport (in --json) | migration_report | - |
"""

from __future__ import annotations

import attrs

from ..engine.facts import declare


@attrs.frozen
class MigratedSandbox:
    sandbox: str
    image: str
    backup: str
    phase: str | None = None  # Stopped or Error on 0.0.x (an Error one runs now)


@attrs.frozen
class MigrationReport:
    mode: str  # finish (recreated on 0.1.x) or abort (recreated on 0.0.x)
    openshell: str | None  # the OpenShell release they were recreated on
    recreated: list[MigratedSandbox]
    failed: list[str]
    plan: str | None = None  # where the closed plan was kept; None while work remains


declare("to_migrate", list[str], "The sandboxes of the migration plan still to recreate.")
declare("migration_report", MigrationReport, "What migrate-openshell recreated, and what failed.", report=True)
