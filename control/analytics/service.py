"""Daily counters of streams and playlists, and their reports to owners (backlog US-5.1 –
US-5.4).

The analytics domain does not know the stream and playlist tables: each of those domains
registers an owner lookup for its resource type, and reports answer 404 for any id of a
type nobody registered."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date

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

STREAM = "stream"
PLAYLIST = "playlist"
LISTENERS = "listeners"
PLAY_COUNT = "play_count"

#: The owner of a resource by id; None when there is no such resource.
OwnerLookup = Callable[[uuid.UUID], Awaitable[uuid.UUID | None]]


class AnalyticsService:
    """Records daily counters and reports them to the resource's owner or an admin."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock = utcnow) -> None:
        self._pool = pool
        self._clock = clock
        self._owners: dict[str, OwnerLookup] = {}

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
        lookup = self._owners.get(resource_type)
        owner_id = await lookup(resource_id) if lookup is not None else None
        what = resource_type.capitalize()
        if owner_id is None:
            raise NotFound(f"{what} not found")
        if not principal.is_admin and not principal.owns(owner_id):
            raise Forbidden(f"Only the {resource_type}'s owner or an admin can see its analytics")
        return await queries.series(self._pool, resource_type, resource_id, metric, first, last)

    def _today(self) -> date:
        return self._clock().astimezone(UTC).date()


ANALYTICS = web.AppKey("analytics_service", AnalyticsService)
