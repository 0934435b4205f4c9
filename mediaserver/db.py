"""PostgreSQL: the embedded server (pgserver) when no DATABASE_URL is set, and the pool."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import asyncpg
from asyncpg.pgproto.pgproto import UUID as RowId

log = logging.getLogger(__name__)

#: The `uuid.UUID` subclass asyncpg returns for `uuid` columns, parsed and hashed in C. Ids
#: taken from requests (paths, tokens) are made as such too: the node's caches, keyed by the
#: ids of rows, then look them up without a Python `__hash__` call per request.
parse_id = RowId

#: One connection, pooled or plain: what work inside a transaction is handed.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
#: What query functions accept: a pool, a pooled connection or a plain connection.
Executor = asyncpg.Pool | Connection


async def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL under `data_dir/pg` and return its URL.

    pgserver keeps the server running while any process uses it and stops it when the
    last one exits, so a second `mediaserver` process on the same data dir shares it.
    """
    import pgserver  # imported lazily: only single-node/dev setups need it

    pg_dir = (data_dir / "pg").resolve()
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    server = await asyncio.to_thread(pgserver.get_server, pg_dir)
    url: str = server.get_uri()
    log.info("embedded PostgreSQL ready", extra={"pg_dir": str(pg_dir)})
    return url


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns come back as Python objects, not strings.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


async def create_pool(url: str, **kwargs: Any) -> asyncpg.Pool:
    """Connection pool with the project's codecs; `command_timeout` bounds every query."""
    kwargs.setdefault("min_size", 1)
    kwargs.setdefault("max_size", 10)
    kwargs.setdefault("command_timeout", 30)
    # asyncpg's default reset runs a second query (pg_advisory_unlock_all, CLOSE ALL,
    # UNLISTEN *, RESET ALL) on every release. Nothing here leaves those behind on a pooled
    # connection: LISTEN and the migration lock use their own connections. asyncpg still
    # rolls back a transaction left open.
    kwargs.setdefault("reset", _no_reset)
    pool = await asyncpg.create_pool(url, init=_init_connection, **kwargs)
    assert pool is not None
    return pool
