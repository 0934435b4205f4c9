"""The in-process feed cache: freshness by the caller's clock, and generations that make a
feed built across a change a miss."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from control.podcasts.feedcache import CachedFeed, MemoryFeedCache

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
