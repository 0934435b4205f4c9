"""Now playing everywhere (issue 12): each stream's song history, the public stations on
air in one call, the live feeds' events, and what Icecast's status JSON shows.

Titles come from the relays (`RelayManager.attach(..., titles=service.title_changed)`):
only the node that relays a stream reports its changes, so each is written once. Listener
counts come from the heartbeats the streams service records (`on_heartbeat`); in a cluster
the owner's heartbeat carries the stream's count for every node."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from control.mediacache import TtlCache
from control.nowplaying import queries
from control.nowplaying.events import Event, EventBus, Subscription
from control.nowplaying.queries import StationRow
from control.nowplaying.schemas import (
    HistoryQuery,
    NowPlaying,
    NowPlayingStation,
    SongHistory,
    SongOut,
    StationLinks,
)
from control.nowplaying.titles import Song
from control.security import Principal
from control.streams.heartbeats import Heartbeat, HeartbeatStore
from control.streams.queries import StreamRow
from control.streams.service import StreamsService
from mediaserver.clock import Clock, utcnow

log = logging.getLogger(__name__)
#: How long one answer of `GET /v1/nowplaying` is reused: a crowd of widgets polling
#: every few seconds makes a query or two per node per interval, not one each.
CACHE_SECONDS = 0.5
_ALL = "all"


class NowPlayingService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        streams: StreamsService,
        heartbeats: HeartbeatStore,
        bus: EventBus,
        base_url: str,
        clock: Clock = utcnow,
    ) -> None:
        self._pool = pool
        self._streams = streams
        self._heartbeats = heartbeats
        self.bus = bus
        self._base_url = base_url
        self._clock = clock
        self.started_at = clock()
        self._cache: TtlCache[str, NowPlaying] = TtlCache(ttl=CACHE_SECONDS)
        #: The listener count last announced per stream (by this node's heartbeats).
        self._listeners: dict[uuid.UUID, int] = {}

    # -- changes (on the node that relays the stream) -------------------------------------

    async def title_changed(self, stream_id: uuid.UUID, title: str | None, at: datetime) -> None:
        """A relay's title changed: end the song playing, start the new one (None: none
        plays now) and tell the live feeds. A title its history already shows playing (a
        takeover's new relay announcing it again) changes nothing."""
        song = Song.parse(title) if title else None
        async with self._pool.acquire() as conn, conn.transaction():
            changed = await queries.change_song(conn, stream_id, song, at)
        if not changed:
            return
        row = await self._streams.cached_row(stream_id)
        out = _song_out(song, at)
        data = {"stream_id": str(stream_id), "song": out.model_dump(mode="json") if out else None}
        await self.bus.publish(Event("title", stream_id, _public(row), data))

    async def off_air(self, stream_id: uuid.UUID) -> None:
        """The stream was disabled or deleted: the song it was playing ends now."""
        await self.title_changed(stream_id, None, self._clock())

    async def heartbeat(self, row: StreamRow, beat: Heartbeat) -> None:
        """A heartbeat was recorded: tell the live feeds when the listener count moved."""
        if self._listeners.get(row.stream_id) == beat.listeners:
            return
        self._listeners[row.stream_id] = beat.listeners
        data = {"stream_id": str(row.stream_id), "listeners": beat.listeners}
        await self.bus.publish(Event("listeners", row.stream_id, _public(row), data))

    # -- reads -----------------------------------------------------------------------------

    async def history(
        self, principal: Principal | None, stream_id: uuid.UUID, page: HistoryQuery
    ) -> SongHistory:
        """The stream's songs, newest first; readable as its status is."""
        await self._streams.readable(principal, stream_id)
        rows, total = await queries.history(self._pool, stream_id, page.per_page, page.offset)
        songs = [SongOut(**_fields(r)) for r in rows]
        return SongHistory(
            stream_id=stream_id, songs=songs, page=page.page, per_page=page.per_page, total=total
        )

    async def now_playing(self) -> NowPlaying:
        """Every public stream on air now, most listeners first (reused `CACHE_SECONDS`)."""
        cached = self._cache.get(_ALL) or await self._cache.load(_ALL, self._now_playing)
        assert cached is not None
        return cached

    async def station(self, principal: Principal | None, stream_id: uuid.UUID) -> NowPlaying:
        """One stream as `now_playing` shows it (no station when off air): the first event
        of its live feed. Readable as its status is."""
        row = await self._streams.readable(principal, stream_id)
        now = self._clock()
        if not row.live:
            return NowPlaying(stations=[], generated_at=now)
        beat = await self._heartbeats.last(stream_id)
        rows, _ = await queries.history(self._pool, stream_id, 1, 0)
        playing = rows[0] if rows and rows[0].ended_at is None else None
        station = StationRow(
            stream_id=row.stream_id,
            name=row.name,
            genre=row.genre,
            description=row.description,
            monetization_enabled=row.monetization_enabled,
            song_text=playing.text if playing else None,
            song_started_at=playing.started_at if playing else None,
        )
        on_air = self._station(station, beat, now)
        return NowPlaying(stations=[on_air] if on_air else [], generated_at=now)

    def subscribe(self, stream_id: uuid.UUID | None) -> Subscription:
        return self.bus.subscribe(stream_id)

    async def _now_playing(self) -> NowPlaying:
        rows = await queries.stations(self._pool)
        beats = await self._heartbeats.last_many(r.stream_id for r in rows)
        now = self._clock()
        found = (self._station(row, beats.get(row.stream_id), now) for row in rows)
        stations = [station for station in found if station is not None]
        stations.sort(key=lambda s: -s.listeners)
        return NowPlaying(stations=stations, generated_at=now)

    def _station(
        self, row: StationRow, beat: Heartbeat | None, now: datetime
    ) -> NowPlayingStation | None:
        """The station if it is on air."""
        figures = self._streams.figures(row.stream_id, beat, now)
        if not figures.connected:
            return None
        title = figures.current_title
        song = None
        if title:
            started = row.song_started_at if row.song_text == title else None
            song = _song_out(Song.parse(title), started)
        live_since = None
        if figures.uptime_seconds is not None:
            live_since = now - timedelta(seconds=figures.uptime_seconds)
        return NowPlayingStation(
            stream_id=row.stream_id,
            name=row.name,
            genre=row.genre,
            description=row.description,
            monetization_enabled=row.monetization_enabled,
            listeners=figures.listeners,
            listener_peak=figures.listener_peak,
            bitrate_kbps=figures.bitrate_kbps,
            live_since=live_since,
            song=song,
            links=self.links(row.stream_id),
        )

    def links(self, stream_id: uuid.UUID) -> StationLinks:
        base = f"{self._base_url}/v1/streams/{stream_id}"
        return StationLinks(
            station=base,
            status=f"{base}/status",
            history=f"{base}/history",
            events=f"{base}/events",
            mp3=f"{base}/live.mp3",
            hls=f"{base}/live.m3u8",
            m3u=f"{base}/listen.m3u",
            pls=f"{base}/listen.pls",
        )


def _public(row: StreamRow | None) -> bool:
    return row is not None and row.live and row.visibility == "public"


def _song_out(song: Song | None, started_at: datetime | None) -> SongOut | None:
    if song is None:
        return None
    return SongOut(
        text=song.text,
        artist=song.artist,
        title=song.title,
        started_at=started_at,
    )


def _fields(row: queries.SongRow) -> dict[str, Any]:
    return dataclasses.asdict(row)


NOWPLAYING = web.AppKey("nowplaying_service", NowPlayingService)
