"""Forward-only SQL migrations from `sql/NNNN_<slug>.sql`, applied once per database.

Applied versions are recorded in `schema_migrations`. A session-level advisory lock is
held for the whole run, so several nodes starting at once apply each file exactly once:
the others wait, then find nothing left to do.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
#: Arbitrary constant identifying "mediaserver migrations" among advisory locks.
LOCK_KEY = 0x6D656469  # "medi"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(Exception):
    """A migration file is malformed, or an applied one was edited afterwards."""


def discover(directory: Path = SQL_DIR) -> list[Migration]:
    if not any(directory.glob("*.sql")):  # a node must never start on a schema it lacks
        raise MigrationError(f"no migrations found in {directory}")
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_<slug>.sql")
        migrations.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return migrations


async def apply_migrations(
    url_or_conn: str | asyncpg.Connection, directory: Path = SQL_DIR
) -> list[str]:
    """Apply pending migrations; returns the names applied by this call."""
    migrations = discover(directory)
    conn = (
        url_or_conn
        if isinstance(url_or_conn, asyncpg.Connection)
        else await asyncpg.connect(url_or_conn)
    )
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            return await _apply_locked(conn, migrations)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        if conn is not url_or_conn:
            await conn.close()


async def _apply_locked(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    await conn.execute(CREATE_TABLE)
    applied = {
        row["version"]: row["checksum"]
        for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")
    }
    done: list[str] = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"{migration.name} was changed after it was applied; "
                    "add a new migration instead"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
        log.info("applied migration", extra={"migration": migration.name})
        done.append(migration.name)
    return done
