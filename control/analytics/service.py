"""Daily counters of streams and playlists, and their reports to owners (backlog US-5.1 –
US-5.4).

The analytics domain does not know the stream and playlist tables: each of those domains
registers an owner lookup for its resource type, and reports answer 404 for any id of a
type nobody registered.

Counters bumped on hot paths (a playlist's plays, one per `stream.m3u8` GET) go through
`count`: added up in memory and written every `flush_seconds` (and on shutdown, and before
any report this node answers) in one statement, so 50 players loading one playlist do not
queue on its counter's row lock. Counts stay exact: a failed write is retried at the next
flush; only a node that dies (or whose database is down at shutdown) loses its last
`flush_seconds` of counts, and other nodes' reports see them that much later."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

import asyncpg
from aiohttp import web

from control.analytics import queries
from control.analytics.schemas import (
    DailyListeners,
    DailyPlays,
    DateRangeQuery,
    PlaylistAnalytics,
    StreamAnalytics,
)
from control.security import Principal
from mediaserver.clock import Clock, utcnow
from mediaserver.errors import Forbidden, NotFound

log = logging.getLogger(__name__)

STREAM = "stream"
PLAYLIST = "playlist"
LISTENERS = "listeners"
PLAY_COUNT = "play_count"
#: How often counts made with `count` are written.
FLUSH_SECONDS = 2.0

#: The owner of a resource by id; None when there is no such resource.
OwnerLookup = Callable[[uuid.UUID], Awaitable[uuid.UUID | None]]


class AnalyticsService:
    """Records daily counters and reports them to the resource's owner or an admin."""

    def __init__(
        self, pool: asyncpg.Pool, clock: Clock = utcnow, flush_seconds: float = FLUSH_SECONDS
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._owners: dict[str, OwnerLookup] = {}
        self._flush_seconds = flush_seconds
        self._pending: dict[queries.CounterKey, int] = {}
        self._flushing = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        #: `_today`'s answer, and when (epoch seconds) it stops being today.
        self._day = date.min
        self._day_ends = 0.0
        self._real = clock is utcnow

    async def start(self) -> None:
        """Start writing `count`ed values every `flush_seconds`."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_every(), name="analytics-flush")

    async def close(self) -> None:
        """Stop the periodic writes and write what is left."""
        if self._flusher is not None:
            async with self._flushing:  # never cut a write short: it may have committed
                self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        try:
            await self.flush()
        except (asyncpg.PostgresError, OSError):
            lost = sum(self._pending.values())
            log.exception("analytics counts lost at shutdown", extra={"counts": lost})

    def count(
        self, resource_type: str, resource_id: uuid.UUID, metric: str, value: int = 1
    ) -> None:
        """Add `value` to today's counter (UTC), in memory until the next `flush`."""
        # `_today()`, written out for the real clock before midnight (a play count per GET)
        today = self._day if self._real and time.time() < self._day_ends else self._today()
        key = (resource_type, resource_id, today, metric)
        self._pending[key] = self._pending.get(key, 0) + value

    async def flush(self) -> None:
        """Write the counts made with `count` so far (kept for the next try on failure)."""
        async with self._flushing:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            try:
                await queries.increment_many(self._pool, batch)
            except BaseException:
                for key, value in batch.items():
                    self._pending[key] = self._pending.get(key, 0) + value
                raise

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush()
            except Exception:  # the database is down: keep the counts, retry next time
                log.exception("could not write analytics counts")

    def register_owner_lookup(self, resource_type: str, lookup: OwnerLookup) -> None:
        """Tell reports how to find who owns a `resource_type` id (replaces any earlier)."""
        self._owners[resource_type] = lookup

    async def record(
        self,
        resource_type: str,
        resource_id: uuid.UUID,
        metric: str,
        value: int = 1,
        day: date | None = None,
    ) -> None:
        """Add `value` to the counter of `day` (default: today, UTC), atomically."""
        day = day or self._today()
        await queries.increment(self._pool, resource_type, resource_id, day, metric, value)

    async def stream_report(
        self, principal: Principal, stream_id: uuid.UUID, query: DateRangeQuery
    ) -> StreamAnalytics:
        """Listeners per day of one stream, with the peak and the total over the range."""
        days = await self._series(principal, STREAM, stream_id, LISTENERS, query)
        return StreamAnalytics(
            stream_id=stream_id,
            daily_listeners=[DailyListeners(date=d.day, listeners=d.value) for d in days],
            peak_listeners=max((d.value for d in days), default=0),
            total_listens=sum(d.value for d in days),
        )

    async def playlist_report(
        self, principal: Principal, playlist_id: uuid.UUID, query: DateRangeQuery
    ) -> PlaylistAnalytics:
        """Plays per day of one playlist, with the total over the range."""
        days = await self._series(principal, PLAYLIST, playlist_id, PLAY_COUNT, query)
        return PlaylistAnalytics(
            playlist_id=playlist_id,
            plays=[DailyPlays(date=d.day, play_count=d.value) for d in days],
            total_plays=sum(d.value for d in days),
        )

    async def _series(
        self,
        principal: Principal,
        resource_type: str,
        resource_id: uuid.UUID,
        metric: str,
        query: DateRangeQuery,
    ) -> list[queries.DailyValue]:
        """The range is checked first (400), then existence (404), then ownership (403)."""
        first, last = query.resolve(self._today())
        await self.flush()  # this node's buffered counts are in the report
        lookup = self._owners.get(resource_type)
        owner_id = await lookup(resource_id) if lookup is not None else None
        what = resource_type.capitalize()
        if owner_id is None:
            raise NotFound(f"{what} not found")
        if not principal.is_admin and not principal.owns(owner_id):
            raise Forbidden(f"Only the {resource_type}'s owner or an admin can see its analytics")
        return await queries.series(self._pool, resource_type, resource_id, metric, first, last)

    def _today(self) -> date:
        if self._clock is not utcnow:  # a test's clock: read it each time
            return self._clock().astimezone(UTC).date()
        # The real clock: today's date is kept until the next UTC midnight, so that a play
        # counted on a manifest GET costs one `time.time()`, not a datetime and a date.
        now = time.time()
        if now >= self._day_ends:
            today = datetime.fromtimestamp(now, UTC).date()
            self._day, self._day_ends = today, (now // _DAY + 1) * _DAY
        return self._day


#: Seconds in a UTC day (epoch days have no leap seconds).
_DAY = 86_400

ANALYTICS = web.AppKey("analytics_service", AnalyticsService)
