"""The in-process feed cache: freshness by the caller's clock, and generations that make a
feed built across a change a miss. The Redis cache with its server gone: misses and
warnings, never errors."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from control.podcasts.feedcache import CachedFeed, MemoryFeedCache, RedisFeedCache
from tests.loopback import free_port

NOW = datetime(2025, 6, 10, tzinfo=UTC)
PODCAST = uuid.uuid4()
OWNER = uuid.uuid4()


def feed(expires_in: float = 300) -> CachedFeed:
    return CachedFeed(b"<rss/>", '"x"', NOW, OWNER, False, NOW + timedelta(seconds=expires_in))


async def test_fresh_until_it_expires():
    cache = MemoryFeedCache()
    entry, generation = await cache.get(PODCAST, NOW)
    assert entry is None
    await cache.put(PODCAST, feed(), generation)
    assert (await cache.get(PODCAST, NOW + timedelta(seconds=299)))[0] == feed()
    assert (await cache.get(PODCAST, NOW + timedelta(seconds=300)))[0] is None


async def test_a_feed_built_before_a_change_is_never_served():
    cache = MemoryFeedCache()
    _, generation = await cache.get(PODCAST, NOW)  # a builder starts…
    await cache.invalidate(PODCAST)  # …a change lands…
    await cache.put(PODCAST, feed(), generation)  # …the stale feed is stored
    entry, current = await cache.get(PODCAST, NOW)
    assert entry is None and current == generation + 1


async def test_bounded():
    cache = MemoryFeedCache(max_entries=2)
    for _ in range(5):
        await cache.put(uuid.uuid4(), feed(), 0)
    assert len(cache._feeds) <= 2


async def test_an_unreachable_redis_is_a_miss_and_never_fails_a_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    elapsed = [0.0]
    cache = RedisFeedCache(redis, monotonic=lambda: elapsed[0])
    try:
        with caplog.at_level(logging.WARNING, logger="control.podcasts.feedcache"):
            for _ in range(3):  # every feed request while Redis is down
                entry, generation = await cache.get(PODCAST, NOW)
                assert entry is None
                await cache.put(PODCAST, feed(), generation)
            await cache.invalidate(PODCAST)  # a change that committed: no exception
            assert cache.pending_invalidations == 1
            elapsed[0] = 10.0
            assert (await cache.get(PODCAST, NOW))[0] is None
    finally:
        await redis.aclose()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("building feeds from the database" in m for m in messages) == 2  # per 10 s
    assert sum(f"podcast {PODCAST}'s cached feed not invalidated" in m for m in messages) == 1
