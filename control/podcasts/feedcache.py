"""Rendered feeds, kept up to `FEED_TTL` and dropped on every change (backlog US-4.6).
Redis when configured (shared by every node), else in process (one node only).

Each podcast has a generation, bumped by `invalidate`. A builder reads the generation
*before* loading the podcast and stores the feed under it; `get` only returns a feed of the
current generation. So a change that lands while a feed is being built makes that feed a
miss instead of serving stale content for minutes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis.asyncio

FEED_TTL = timedelta(seconds=300)
GENERATION_TTL_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class CachedFeed:
    """A rendered feed and what serving it needs without touching the database."""

    body: bytes
    etag: str
    last_modified: datetime
    owner_id: uuid.UUID
    paywalled: bool
    expires_at: datetime
    #: The verified domain the podcast is served at, if any (its feed's canonical host).
    custom_domain: str | None = None


class FeedCache(Protocol):
    async def get(self, podcast_id: uuid.UUID, now: datetime) -> tuple[CachedFeed | None, int]:
        """The feed if one of the current generation is fresh at `now`, and the generation."""
        ...

    async def put(self, podcast_id: uuid.UUID, feed: CachedFeed, generation: int) -> None:
        """Keep `feed` (built at `generation`) until its `expires_at`."""
        ...

    async def invalidate(self, podcast_id: uuid.UUID) -> None:
        """Forget the podcast's feed, including one being built right now."""
        ...


class MemoryFeedCache:
    """In-process cache, bounded to `max_entries` feeds (it starts over when full)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._max = max_entries
        self._feeds: dict[uuid.UUID, tuple[CachedFeed, int]] = {}
        self._generations: dict[uuid.UUID, int] = {}

    async def get(self, podcast_id: uuid.UUID, now: datetime) -> tuple[CachedFeed | None, int]:
        generation = self._generations.get(podcast_id, 0)
        entry = self._feeds.get(podcast_id)
        if entry is None or entry[1] != generation or entry[0].expires_at <= now:
            return None, generation
        return entry[0], generation

    async def put(self, podcast_id: uuid.UUID, feed: CachedFeed, generation: int) -> None:
        if len(self._feeds) >= self._max:
            self._feeds.clear()
        self._feeds[podcast_id] = (feed, generation)

    async def invalidate(self, podcast_id: uuid.UUID) -> None:
        self._generations[podcast_id] = self._generations.get(podcast_id, 0) + 1
        self._feeds.pop(podcast_id, None)


class RedisFeedCache:
    """`<prefix><id>`: a hash holding the feed; `<prefix>gen:<id>`: its generation."""

    def __init__(self, redis: redis.asyncio.Redis, prefix: str = "ms:feed:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def get(self, podcast_id: uuid.UUID, now: datetime) -> tuple[CachedFeed | None, int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._key(podcast_id))
            pipe.get(self._gen_key(podcast_id))
            raw, gen = await pipe.execute()
        generation = int(gen or 0)
        feed = _decode(raw, generation)
        if feed is None or feed.expires_at <= now:
            return None, generation
        return feed, generation

    async def put(self, podcast_id: uuid.UUID, feed: CachedFeed, generation: int) -> None:
        # Redis drops it after FEED_TTL at the latest; `get` honours an earlier `expires_at`.
        key = self._key(podcast_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=_encode(feed, generation))
            pipe.expire(key, int(FEED_TTL.total_seconds()))
            await pipe.execute()

    async def invalidate(self, podcast_id: uuid.UUID) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(self._gen_key(podcast_id))
            pipe.expire(self._gen_key(podcast_id), GENERATION_TTL_SECONDS)
            pipe.delete(self._key(podcast_id))
            await pipe.execute()

    def _key(self, podcast_id: uuid.UUID) -> str:
        return f"{self._prefix}{podcast_id}"

    def _gen_key(self, podcast_id: uuid.UUID) -> str:
        return f"{self._prefix}gen:{podcast_id}"


def _encode(feed: CachedFeed, generation: int) -> dict[str, Any]:
    return {
        "body": feed.body,
        "etag": feed.etag,
        "last_modified": feed.last_modified.isoformat(),
        "owner_id": str(feed.owner_id),
        "paywalled": "1" if feed.paywalled else "0",
        "expires_at": feed.expires_at.isoformat(),
        "custom_domain": feed.custom_domain or "",
        "generation": str(generation),
    }


def _decode(raw: dict[bytes, bytes] | None, generation: int) -> CachedFeed | None:
    if not raw:
        return None
    try:
        if int(raw[b"generation"]) != generation:
            return None
        return CachedFeed(
            body=raw[b"body"],
            etag=raw[b"etag"].decode(),
            last_modified=datetime.fromisoformat(raw[b"last_modified"].decode()),
            owner_id=uuid.UUID(raw[b"owner_id"].decode()),
            paywalled=raw[b"paywalled"] == b"1",
            expires_at=datetime.fromisoformat(raw[b"expires_at"].decode()),
            custom_domain=raw[b"custom_domain"].decode() or None,
        )
    except (KeyError, ValueError):
        return None  # written by an incompatible version: as good as a miss
