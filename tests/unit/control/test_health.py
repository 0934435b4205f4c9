"""`HealthService` names each component that does not answer: a Redis that refuses
connections is reported as `redis` while the database (real PostgreSQL) is fine."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from control.health import HealthService
from mediaserver.db import create_pool


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url)
    yield pool
    await pool.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_redis_that_is_gone_is_named(pool: asyncpg.Pool, redis_url: str) -> None:
    live = aioredis.from_url(redis_url)
    gone = aioredis.from_url(f"redis://127.0.0.1:{closed_port()}/0", socket_connect_timeout=1)
    try:
        assert await HealthService(pool, live, timeout=2).failing() == []
        assert await HealthService(pool, gone, timeout=2).failing() == ["redis"]
    finally:
        await live.aclose()
        await gone.aclose()
