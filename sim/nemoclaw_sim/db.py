"""The gateway's SQLite store with sqlx 0.8.6 migration semantics 
(docs/reference/openshell-cli-and-gateway.md, "Storage", "Migrations").

Each migration is a fixed SQL text whose SHA-384 is its checksum, as sqlx computes it from the
file. `migrate()` follows sqlx's `Migrator::run` order exactly, so an older gateway refuses a
database touched by a newer one with sqlx's own words and without writing a byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str

    @property
    def checksum(self) -> bytes:
        return hashlib.sha384(self.sql.encode()).digest()


_OBJECTS_SQL = """CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY,
    object_type TEXT NOT NULL,
    name TEXT NOT NULL,
    scope TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    status TEXT,
    dedup_key TEXT,
    hit_count INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (object_type, name)
);
"""

_MIGRATIONS_CURRENT = {
    1: Migration(1, "create objects", _OBJECTS_SQL),
    4: Migration(4, "add object metadata", "ALTER TABLE objects ADD COLUMN labels TEXT;\n"),
    5: Migration(5, "add resource version",
                 "ALTER TABLE objects ADD COLUMN resource_version INTEGER NOT NULL DEFAULT 1;\n"),
    6: Migration(6, "add workspace column",
                 "ALTER TABLE objects ADD COLUMN workspace TEXT NOT NULL DEFAULT '';\n"
                 "CREATE UNIQUE INDEX IF NOT EXISTS objects_type_workspace_name "
                 "ON objects (object_type, workspace, name);\n"),
    # 0.1.x (docs/reference/openshell-versions.md).
    7: Migration(7, "remove inference routes", "DELETE FROM objects WHERE object_type = 'inference_route';\n"),
    8: Migration(8, "add pagination indexes",
                 "CREATE INDEX IF NOT EXISTS objects_workspace_page_idx ON objects (object_type, workspace, name, id);\n"
                 "CREATE INDEX IF NOT EXISTS objects_all_workspaces_page_idx ON objects (object_type, workspace, id);\n"),
    9: Migration(9, "allocation claims",
                 "CREATE TABLE IF NOT EXISTS allocation_claims (\n    target TEXT PRIMARY KEY,\n"
                 "    sandbox_id TEXT NOT NULL REFERENCES objects(id) ON DELETE CASCADE,\n"
                 "    attempt_id TEXT NOT NULL,\n    runtime_generation INTEGER NOT NULL\n);\n"),
    10: Migration(10, "build indexes",
                  "CREATE INDEX IF NOT EXISTS objects_updated_idx ON objects (object_type, updated_at_ms);\n"),
}

# k3s era (≤0.0.36): 001 differs and 002/003 exist; later releases removed them.
_MIGRATIONS_LEGACY = {
    1: Migration(1, "create objects", "-- k3s gateway store\n" + _OBJECTS_SQL),
    2: Migration(2, "add dedup index", "CREATE INDEX IF NOT EXISTS objects_dedup ON objects (object_type, dedup_key);\n"),
    3: Migration(3, "add scope index", "CREATE INDEX IF NOT EXISTS objects_scope ON objects (object_type, scope);\n"),
}


def migrations_for(versions: list[int], legacy: bool) -> list[Migration]:
    source = _MIGRATIONS_LEGACY if legacy else _MIGRATIONS_CURRENT
    return [source[v] for v in versions]


class MigrateError(Exception):
    """sqlx's `MigrateError` Display text."""


_CREATE_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);"""


def sqlite_path(db_url: str) -> Path:
    """`sqlite:PATH`, `sqlite://PATH` or `sqlite:///PATH` (query string ignored)."""
    if not db_url.startswith("sqlite:"):
        raise ValueError(f"unsupported database URL: {db_url}")
    rest = db_url[len("sqlite:"):].split("?", 1)[0]
    if rest.startswith("//"):
        rest = rest[2:]
    return Path(rest)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating when missing, mode 0600 like 0.0.41+) in SQLite's default journal mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    if created:
        conn.execute("PRAGMA user_version")  # materialise the file
        os.chmod(path, 0o600)
    return conn


def _statements(sql: str) -> list[str]:
    """Split a migration file into statements, dropping `--` comment lines."""
    body = "\n".join(ln for ln in sql.splitlines() if not ln.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
    return row is not None


def migrate(conn: sqlite3.Connection, known: list[Migration]) -> list[int]:
    """sqlx 0.8.6 `Migrator::run`; returns the versions applied now."""
    if not _table_exists(conn, "_sqlx_migrations"):
        conn.execute(_CREATE_MIGRATIONS_TABLE)
    dirty = conn.execute("SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1").fetchone()
    if dirty:
        raise MigrateError(f"migration {dirty[0]} is partially applied; fix and remove row from `_sqlx_migrations` table")
    applied = {v: bytes(c) for v, c in conn.execute("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")}
    by_version = {m.version: m for m in known}
    for version in sorted(applied):
        if version not in by_version:
            raise MigrateError(f"migration {version} was previously applied but is missing in the resolved migrations")
    done: list[int] = []
    for m in known:
        if m.version in applied:
            if applied[m.version] != m.checksum:
                raise MigrateError(f"migration {m.version} was previously applied but has been modified")
            continue
        start = time.monotonic_ns()
        conn.execute("BEGIN")
        try:
            for stmt in _statements(m.sql):
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) "
                "VALUES (?, ?, TRUE, ?, ?)",
                (m.version, m.description, m.checksum, time.monotonic_ns() - start),
            )
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        done.append(m.version)
    return done


# --- object store ------------------------------------------------------------------------------

@dataclass
class StoredObject:
    id: str
    name: str
    payload: dict[str, Any]
    created_at_ms: int
    updated_at_ms: int
    resource_version: int


class ObjectStore:
    """The `objects` table, for the columns this release's migrations created."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        cols = {row[1] for row in conn.execute("PRAGMA table_info(objects)")}
        self.has_labels = "labels" in cols
        self.has_resource_version = "resource_version" in cols

    def list(self, object_type: str) -> list[StoredObject]:
        rv = "resource_version" if self.has_resource_version else "1"
        rows = self.conn.execute(
            f"SELECT id, name, payload, created_at_ms, updated_at_ms, {rv} FROM objects "
            "WHERE object_type = ? ORDER BY name", (object_type,)
        ).fetchall()
        return [StoredObject(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5]) for r in rows]

    def get(self, object_type: str, name: str) -> StoredObject | None:
        for obj in self.list(object_type):
            if obj.name == name:
                return obj
        return None

    def insert(self, object_type: str, obj_id: str, name: str, payload: dict[str, Any]) -> StoredObject:
        now = int(time.time() * 1000)
        cols = ["id", "object_type", "name", "payload", "created_at_ms", "updated_at_ms"]
        vals: list[Any] = [obj_id, object_type, name, json.dumps(payload).encode(), now, now]
        if self.has_labels:
            cols.append("labels")
            vals.append(json.dumps(payload.get("labels") or {}))
        self.conn.execute(
            f"INSERT INTO objects ({', '.join(cols)}) VALUES ({', '.join('?' * len(vals))})", vals
        )
        return StoredObject(obj_id, name, payload, now, now, 1)

    def update(self, obj: StoredObject) -> None:
        now = int(time.time() * 1000)
        sets = "payload = ?, updated_at_ms = ?"
        if self.has_resource_version:
            sets += ", resource_version = resource_version + 1"
        self.conn.execute(f"UPDATE objects SET {sets} WHERE id = ?", (json.dumps(obj.payload).encode(), now, obj.id))

    def delete(self, obj_id: str) -> None:
        self.conn.execute("DELETE FROM objects WHERE id = ?", (obj_id,))
