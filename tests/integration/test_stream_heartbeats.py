"""The heartbeat store: the in-process one and the Redis one (against the real server)
keep each stream's last heartbeat whole, drop it on request, and Redis expires it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio

from control.streams.heartbeats import (
    TTL_SECONDS,
    Heartbeat,
    HeartbeatStore,
    MemoryHeartbeatStore,
    RedisHeartbeatStore,
)

FULL = Heartbeat(
    at=datetime(2025, 6, 1, 20, 0, 5, 250_000, tzinfo=UTC),
    listeners=125,
    uptime_seconds=8040,
    cpu_usage_percent=37.5,
    memory_usage_bytes=512_000_000,
    current_title="Artist – Track; with = signs",
    bitrate_kbps=128,
    node="mediaserver-0",
)
BARE = Heartbeat(at=datetime(2025, 6, 1, 20, 0, 35, tzinfo=UTC), listeners=0, uptime_seconds=0)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request, redis_url) -> AsyncIterator[HeartbeatStore]:
    if request.param == "memory":
        yield MemoryHeartbeatStore()
        return
    client = redis.asyncio.Redis.from_url(redis_url)
    prefix = f"ms:test:heartbeat:{uuid.uuid4().hex}:"
    yield RedisHeartbeatStore(client, prefix=prefix)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_last_heartbeat_round_trips_and_replaces_the_previous_one(store):
    stream, other = uuid.uuid4(), uuid.uuid4()
    assert await store.last(stream) is None
    await store.record(stream, FULL)
    assert await store.last(stream) == FULL
    await store.record(stream, BARE)  # fields absent now must not linger from FULL
    assert await store.last(stream) == BARE
    await store.record(other, FULL)
    assert await store.last_many([stream, uuid.uuid4(), other]) == {stream: BARE, other: FULL}
    assert await store.last_many([]) == {}


async def test_forget_drops_only_that_stream(store):
    stream, other = uuid.uuid4(), uuid.uuid4()
    await store.record(stream, FULL)
    await store.record(other, FULL)
    await store.forget(stream)
    assert await store.last(stream) is None and await store.last(other) == FULL


async def test_redis_keeps_one_expiring_hash_per_stream(redis_client):
    prefix = f"ms:test:heartbeat:{uuid.uuid4().hex}:"
    store = RedisHeartbeatStore(redis_client, prefix=prefix)
    stream = uuid.uuid4()
    await store.record(stream, FULL)
    key = f"{prefix}{stream}"
    try:
        assert await redis_client.type(key) == b"hash"
        assert TTL_SECONDS - 5 < await redis_client.ttl(key) <= TTL_SECONDS
        assert (await redis_client.hgetall(key))[b"listeners"] == b"125"
        await redis_client.hset(key, "listeners", "many")  # another version's format
        assert await store.last(stream) is None
    finally:
        await redis_client.delete(key)
