"""Migrations: applied once, concurrently safe, edits to applied files refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from mediaserver.migrate import MigrationError, apply_migrations, discover


async def test_concurrent_nodes_apply_each_migration_exactly_once(make_database):
    url = await asyncio.to_thread(make_database)
    results = await asyncio.gather(*(apply_migrations(url) for _ in range(4)))
    expected = [m.name for m in discover()]
    # Exactly one runner applied everything; the others waited on the lock and found nothing.
    assert sorted(results, key=len) == [[], [], [], expected]
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in discover()]
        assert await conn.fetchval("SELECT to_regclass('users') IS NOT NULL")
    finally:
        await conn.close()
    assert await apply_migrations(url) == []


async def test_an_edited_migration_is_refused(make_database, tmp_path: Path):
    url = await asyncio.to_thread(make_database)
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (id int);")
    assert await apply_migrations(url, tmp_path) == ["0001_first.sql"]
    (tmp_path / "0002_second.sql").write_text("CREATE TABLE b (id int);")
    assert await apply_migrations(url, tmp_path) == ["0002_second.sql"]
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (id bigint);")
    with pytest.raises(MigrationError, match=r"0001_first\.sql was changed"):
        await apply_migrations(url, tmp_path)


async def test_a_failing_migration_leaves_nothing_half_applied(make_database, tmp_path: Path):
    url = await asyncio.to_thread(make_database)
    (tmp_path / "0001_broken.sql").write_text("CREATE TABLE ok (id int); SELECT * FROM missing;")
    with pytest.raises(asyncpg.UndefinedTableError):
        await apply_migrations(url, tmp_path)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('ok')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await conn.close()


def test_badly_named_files_are_refused(tmp_path: Path):
    (tmp_path / "create_users.sql").write_text("")
    with pytest.raises(MigrationError, match=r"NNNN_<slug>\.sql"):
        discover(tmp_path)


async def test_no_migrations_at_all_is_an_error_not_an_empty_schema(make_database, tmp_path):
    # e.g. an install that did not ship sql/: the node must not start on no tables.
    with pytest.raises(MigrationError, match="no migrations found"):
        await apply_migrations(await asyncio.to_thread(make_database), tmp_path)
