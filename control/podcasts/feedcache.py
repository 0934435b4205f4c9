"""Rendered feeds, kept up to `FEED_TTL` and dropped on every change (backlog US-4.6).
Redis when configured (shared by every node), else in process (one node only).

Each podcast has a generation, bumped by `invalidate`. A builder reads the generation
*before* loading the podcast and stores the feed under it; `get` only returns a feed of the
current generation. So a change that lands while a feed is being built makes that feed a
miss instead of serving stale content for minutes.

The cache is an optimisation: while Redis is unreachable, `RedisFeedCache.get` is a miss
(every feed is built from the database), `put` does nothing, and `invalidate` never fails
the change that already committed. A failed invalidation is remembered and retried before
this node's next cache read, so this node never serves the stale feed; other nodes may,
until the retry lands or `FEED_TTL` drops it. Warnings at most every `WARN_EVERY_SECONDS`.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from redis.exceptions import RedisError

if TYPE_CHECKING:
    import redis.asyncio
    from redis.typing import EncodableT, FieldT

FEED_TTL = timedelta(seconds=300)
GENERATION_TTL_SECONDS = 86_400
WARN_EVERY_SECONDS = 10.0
#: Failed invalidations kept for a retry; beyond this the oldest are dropped (the TTL
#: bounds their staleness anyway).
MAX_PENDING = 10_000
#: The generation `get` reports when it could not read one: `put` ignores it.
UNKNOWN_GENERATION = -1

log = logging.getLogger(__name__)


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
    """`<prefix><id>`: a hash holding the feed; `<prefix>gen:<id>`: its generation.
    Fails open (see the module's docstring); `monotonic` times the warnings."""

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        prefix: str = "ms:feed:",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._monotonic = monotonic
        self._warned_at: float | None = None
        #: Podcasts whose invalidation failed, oldest first, each with the number of its
        #: latest failed attempt (a retry clears only what it covered).
        self._pending: dict[uuid.UUID, int] = {}
        self._attempts = itertools.count()

    async def get(self, podcast_id: uuid.UUID, now: datetime) -> tuple[CachedFeed | None, int]:
        try:
            await self._retry_invalidations()
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._key(podcast_id))
                pipe.get(self._gen_key(podcast_id))
                raw, gen = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._warn("feed cache unavailable, building feeds from the database: %r", exc)
            return None, UNKNOWN_GENERATION
        generation = int(gen or 0)
        feed = _decode(raw, generation)
        if feed is None or feed.expires_at <= now:
            return None, generation
        return feed, generation

    async def put(self, podcast_id: uuid.UUID, feed: CachedFeed, generation: int) -> None:
        # Redis drops it after FEED_TTL at the latest; `get` honours an earlier `expires_at`.
        if generation == UNKNOWN_GENERATION:
            return  # Redis was down when the build started
        key = self._key(podcast_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=_encode(feed, generation))
                pipe.expire(key, int(FEED_TTL.total_seconds()))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._warn("feed cache unavailable, not caching feeds: %r", exc)

    async def invalidate(self, podcast_id: uuid.UUID) -> None:
        self._pending.pop(podcast_id, None)
        self._pending[podcast_id] = next(self._attempts)
        while len(self._pending) > MAX_PENDING:
            del self._pending[next(iter(self._pending))]
        try:
            await self._retry_invalidations()
        except (RedisError, OSError) as exc:
            # The change is committed: it must not fail. This node retries before its next
            # read; other nodes serve the old feed until then, FEED_TTL at the most.
            log.warning(
                "feed cache unavailable, podcast %s's cached feed not invalidated yet "
                "(%d pending; retried on the next feed request): %r",
                podcast_id,
                len(self._pending),
                exc,
            )

    @property
    def pending_invalidations(self) -> int:
        return len(self._pending)

    async def _retry_invalidations(self) -> None:
        """Bump the generation of every podcast whose invalidation failed (in one round
        trip); raises when Redis is still unreachable, keeping them pending."""
        if not self._pending:
            return
        covered = dict(self._pending)
        async with self._redis.pipeline(transaction=True) as pipe:
            for podcast_id in covered:
                pipe.incr(self._gen_key(podcast_id))
                pipe.expire(self._gen_key(podcast_id), GENERATION_TTL_SECONDS)
                pipe.delete(self._key(podcast_id))
            await pipe.execute()
        for podcast_id, attempt in covered.items():
            if self._pending.get(podcast_id) == attempt:  # no newer change came meanwhile
                del self._pending[podcast_id]

    def _warn(self, message: str, exc: BaseException) -> None:
        now = self._monotonic()
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning(message, exc)

    def _key(self, podcast_id: uuid.UUID) -> str:
        return f"{self._prefix}{podcast_id}"

    def _gen_key(self, podcast_id: uuid.UUID) -> str:
        return f"{self._prefix}gen:{podcast_id}"


def _encode(feed: CachedFeed, generation: int) -> dict[FieldT, EncodableT]:
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
