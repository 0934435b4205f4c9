"""Runs one relay per live stream this node owns, and is the `RelayControl` the streams
service talks to. Each `Relay` owns its hub, its source connection and its periodic
heartbeat; the manager owns the relays and cancels and awaits them on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from aiohttp import web

from hls.adbreaks import AdMarker
from hls.live import HlsPosition, LiveHls, WindowEntry
from relay.codec import AudioFrame, Codec, codec_for
from relay.hub import StreamHub
from relay.sessions import HlsSessions
from relay.source import AddressCheck, ResponseHead, SourceClient
from relay.status import RelaySnapshot, StreamSource

log = logging.getLogger(__name__)

#: (stream, figures, sample): `sample` is True only for the periodic beat, the one that
#: counts as a listener sample in the analytics; the extra beats (on connect, on a settings
#: change) only refresh the status.
HeartbeatSink = Callable[[uuid.UUID, RelaySnapshot, bool], Awaitable[None]]
#: (stream, new title or None, when): the now-playing title changed (song history, live
#: feeds). None: the source went quiet (no title, or gone past the grace period).
TitleSink = Callable[[uuid.UUID, str | None, datetime], Awaitable[None]]
#: Title changes waiting for the sink; past this many the oldest are dropped (and logged).
TITLE_BACKLOG = 32
AdsSource = Callable[[uuid.UUID], Awaitable[Sequence[AdMarker]]]


class HlsPositions(Protocol):
    """Where each stream's live playlist stands, kept where the next owner finds it."""

    async def load(self, stream_id: uuid.UUID) -> HlsPosition | None: ...

    async def save(
        self, stream_id: uuid.UUID, position: HlsPosition, entry: WindowEntry
    ) -> None: ...


class AdminStats(Protocol):
    """What the source's admin interface reports; `title` is None when it names none."""

    @property
    def title(self) -> str | None: ...


#: The source's admin stats, None when they could not be fetched.
StatsSource = Callable[[uuid.UUID], Awaitable[AdminStats | None]]


class StreamsBackend(Protocol):
    """What relays need from the streams service (kept narrow to avoid a cycle)."""

    async def record_heartbeat(
        self,
        stream_id: uuid.UUID,
        *,
        listeners: int,
        uptime_seconds: int,
        current_title: str | None = None,
        bitrate_kbps: int | None = None,
        node: str | None = None,
        sample: bool = True,
    ) -> None: ...

    async def ad_markers(self, stream_id: uuid.UUID) -> Sequence[AdMarker]: ...

    async def admin_stats(self, stream_id: uuid.UUID) -> AdminStats | None: ...


@dataclass(frozen=True, slots=True)
class RelayOptions:
    grace_seconds: float = 30.0
    heartbeat_seconds: float = 30.0
    metaint: int = 16_000
    burst_bytes: int = 64 * 1024
    backlog_limit: int = 512 * 1024
    stall_timeout: float = 30.0
    batch_seconds: float = 0.1
    reconnect_backoff: tuple[float, float] = (1.0, 30.0)
    read_timeout: float = 15.0
    hls_segment_seconds: int = 6
    #: Bound on one admin-stats request (the title fallback); the beat waits no longer.
    stats_timeout: float = 5.0
    #: Between the listener samples, a beat goes out this often when the listener count
    #: changed, so the status other nodes read from the heartbeats stays current.
    listeners_beat_seconds: float = 5.0
    #: The first segment of a run that carries on an earlier run's playlist (a takeover)
    #: is cut this short, so players that kept polling get audio sooner.
    resumed_first_segment_seconds: float = 2.0
    #: Where a relay may connect to pull its source (`SourceClient(address_of=…)`): the
    #: node's URL guard, so neither a redirect nor a changed DNS answer takes a relay to a
    #: private address. None: anywhere.
    source_address: AddressCheck | None = None


class Relay:
    """One live stream on this node: source → hub (→ HLS), plus its bookkeeping."""

    def __init__(
        self,
        source: StreamSource,
        options: RelayOptions,
        clock: Callable[[], datetime],
        heartbeat: HeartbeatSink | None = None,
        ads: AdsSource | None = None,
        stats: StatsSource | None = None,
        resume: HlsPosition | None = None,
        positions: HlsPositions | None = None,
        titles: TitleSink | None = None,
    ) -> None:
        self.source = source
        self._options = options
        self._clock = clock
        self._heartbeat = heartbeat
        self._ads = ads
        self._stats = stats
        self._titles = titles
        self._title_changes: deque[tuple[str | None, datetime]] = deque(maxlen=TITLE_BACKLOG)
        self._title_changed = asyncio.Event()
        self._beat_now = asyncio.Event()
        self.hub = StreamHub(
            metaint=options.metaint,
            burst_bytes=options.burst_bytes,
            backlog_limit=options.backlog_limit,
            stall_timeout=options.stall_timeout,
            batch_seconds=options.batch_seconds,
        )
        self.client = SourceClient(
            source.source_url.rstrip("/") + source.mount,
            self,
            read_timeout=options.read_timeout,
            backoff=options.reconnect_backoff,
            stream_id=str(source.stream_id),
            address_of=options.source_address,
        )
        self.connected = False
        self.connected_since: datetime | None = None
        self.last_audio_at: datetime | None = None
        self.current_title: str | None = None
        self._icy_title: str | None = None  # in-band StreamTitle: always wins
        self._admin_title: str | None = None  # admin stats' title, when the source sends none
        self.bitrate_kbps: int | None = None
        #: What the source sends (its `Content-Type`); listeners get it as it is.
        self.codec = Codec.MP3
        self._declared_kbps: int | None = None  # the source's icy-br
        on_position = None
        if positions is not None:
            on_position = functools.partial(positions.save, source.stream_id)
        self.hls = LiveHls(
            options.hls_segment_seconds,
            clock,
            resume=resume,
            on_position=on_position,
            first_segment_seconds=options.resumed_first_segment_seconds if resume else None,
        )
        self._discontinuity = False
        #: HLS players (address, User-Agent) that polled the playlist lately.
        self._hls_sessions = HlsSessions(2 * options.hls_segment_seconds)
        #: HLS players other nodes of a cluster serve this stream to (they report them).
        self.remote_listeners = 0
        self._tasks: list[asyncio.Task[None]] = []
        #: A push stream's encoder is connected (a second one is refused).
        self.pushing = False
        self._grace: asyncio.TimerHandle | None = None
        self._outage_expired = False  # the source has been gone longer than the grace period

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Pull the source (a push stream's encoder calls the `SourceSink` methods itself,
        `relay.ingest`), package HLS and beat."""
        name = str(self.source.stream_id)
        self.hls.start()
        self._tasks = [asyncio.create_task(self._beat(), name=f"relay-beat-{name}")]
        if not self.source.pushed:
            run = self.client.run()
            self._tasks.append(asyncio.create_task(run, name=f"relay-source-{name}"))
        if self._titles is not None:
            task = asyncio.create_task(self._report_titles(), name=f"relay-titles-{name}")
            self._tasks.append(task)

    async def stop(self, reason: str) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._cancel_grace()
        await self.hls.stop()
        self.hub.close(reason)

    def refresh(self) -> None:
        """Re-read what comes from the stream's settings (ad markers) and beat now."""
        self._beat_now.set()

    @property
    def starting(self) -> bool:
        """No audio yet in this run and the source not given up on: a listener arriving
        now (right after registration, during a takeover) is worth holding a moment."""
        return not self.connected and self.hub.offset == 0 and not self._outage_expired

    @property
    def down(self) -> bool:
        """US-2.7 "relay down": no audio has ever arrived, or the source has been gone for
        longer than the grace period. Listeners are then refused rather than handed a stale
        burst or a frozen playlist; within the grace period they are served (and wait)."""
        return not self.connected and (self._outage_expired or self.hub.offset == 0)

    def disconnect_listeners(self, reason: str) -> None:
        """End every MP3 listener's response and forget the HLS players (access changed:
        they must come back through the access check)."""
        self.hub.close_listeners(reason)
        self._hls_sessions.clear()

    def note_hls_client(self, address: str | None, agent: str) -> None:
        """An HLS player fetched the playlist (they poll every target duration or so)."""
        self._hls_sessions.note((address, agent), time.monotonic())

    @property
    def listeners(self) -> int:
        """MP3 connections, HLS players here and HLS players on other nodes."""
        return self.hub.listeners + self.hls_sessions + self.remote_listeners

    @property
    def hls_sessions(self) -> int:
        """Players that fetched the playlist within the last two to four target durations."""
        return self._hls_sessions.count(time.monotonic())

    def snapshot(self) -> RelaySnapshot:
        return RelaySnapshot(
            connected=self.connected,
            current_title=self.current_title,
            bitrate_kbps=self.bitrate_kbps,
            listeners=self.listeners,
            connected_since=self.connected_since,
            last_audio_at=self.last_audio_at,
            content_type=self.codec.content_type if self.connected or self.hub.offset else None,
        )

    # -- SourceSink ------------------------------------------------------------------------

    def on_connected(self, head: ResponseHead) -> None:
        codec = codec_for(head.headers.get("content-type")) or Codec.MP3
        if codec is not self.codec:
            # Listeners were told the old codec's Content-Type: they reconnect and get the
            # new one; no burst may mix both. HLS marks the change with a discontinuity.
            self.hub.restart("source changed codec")
            self.codec = codec
            self.bitrate_kbps = None
        self.connected = True
        self.connected_since = self._clock()
        self._declared_kbps = head.bitrate_kbps
        self.bitrate_kbps = self.bitrate_kbps or head.bitrate_kbps
        self._cancel_grace()
        self._outage_expired = False
        self._beat_now.set()  # status on every node turns "connected" now, not in 30 s
        log.info("source connected", extra={"stream_id": str(self.source.stream_id)})

    def on_frames(self, frames: Sequence[AudioFrame]) -> None:
        self.last_audio_at = self._clock()
        if self.codec is Codec.MP3:
            self.bitrate_kbps = frames[-1].header.bitrate_kbps
        else:  # AAC frames vary in size: the source's figure, else this batch's average
            self.bitrate_kbps = self._declared_kbps or _average_kbps(frames)
        self.hub.publish(frames)
        discontinuity, self._discontinuity = self._discontinuity, False
        self.hls.on_frames(frames, discontinuity, self.codec)

    def on_metadata(self, fields: dict[str, str]) -> None:
        title = fields.get("StreamTitle")
        if title is not None:
            self._icy_title = title.strip() or None
            self._set_title(self._icy_title or self._admin_title)
        if self._icy_title is not None or not self._admin_title:
            self.hub.set_metadata(fields)

    def _set_title(self, title: str | None) -> None:
        if title != self.current_title:
            self.current_title = title
            self.hls.on_title(title)
            if self._titles is not None:
                if len(self._title_changes) == self._title_changes.maxlen:
                    log.warning("title changes dropped: the title sink is behind")
                self._title_changes.append((title, self._clock()))
                self._title_changed.set()

    async def _report_titles(self) -> None:
        """Hand title changes to the sink in order, one at a time, off the audio path."""
        assert self._titles is not None
        while True:
            await self._title_changed.wait()
            self._title_changed.clear()
            while self._title_changes:
                title, at = self._title_changes.popleft()
                try:
                    await self._titles(self.source.stream_id, title, at)
                except Exception:  # a failed write must not end the relay
                    log.exception("title change not recorded")

    def on_disconnected(self, reason: str) -> None:
        was_connected, self.connected = self.connected, False
        self.connected_since = None
        self.hub.flush()
        if was_connected:
            self._discontinuity = True  # the next HLS segment starts a new timeline
        if self._grace is None and not self._outage_expired:
            # MP3 listeners stay connected through short outages; past the grace period
            # they are released so players can show an error and retry.
            loop = asyncio.get_running_loop()
            self._grace = loop.call_later(self._options.grace_seconds, self._grace_expired)

    def _grace_expired(self) -> None:
        self._grace = None
        if not self.connected:
            self._outage_expired = True
            self.hub.close_listeners("source offline")
            self._icy_title = self._admin_title = None
            self._set_title(None)  # off air: the song history's last entry ends here

    def _cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    async def _beat(self) -> None:
        """Every `heartbeat_seconds` (the listener sample), and also right after connecting
        or a settings change: forget departed listeners, refresh ad markers and the admin
        title, record the relay's figures like an external relay's heartbeat."""
        loop = asyncio.get_running_loop()
        period = self._options.heartbeat_seconds
        next_sample = loop.time() + period
        reported = -1  # listeners in the last beat sent
        while True:
            # Extra beats do not move the sample clock: a stream changed every few seconds
            # still gets its sample every `period`, and only that one.
            wake = min(next_sample, loop.time() + self._options.listeners_beat_seconds)
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: see mediaserver/jobs.py
                async with asyncio.timeout(max(0.0, wake - loop.time())):
                    await self._beat_now.wait()
            asked, sample = self._beat_now.is_set(), loop.time() >= next_sample
            self._beat_now.clear()
            listeners = self.listeners
            if not (asked or sample or listeners != reported):
                continue
            reported = listeners
            if sample:
                next_sample = loop.time() + period
            try:
                await self._beat_once(sample)
            except Exception:  # a failed beat must not end the relay; the next one retries
                log.exception("relay heartbeat failed")

    async def _beat_once(self, sample: bool) -> None:
        self.hub.sweep()
        if self._ads is not None:
            self.hls.ad_markers = tuple(await self._ads(self.source.stream_id))
        if not self.connected:
            return
        if self._icy_title is None and self._stats is not None:
            await self._fetch_admin_title()
        if self._heartbeat is not None:
            await self._heartbeat(self.source.stream_id, self.snapshot(), sample)

    async def _fetch_admin_title(self) -> None:
        """The title fallback for sources that send no in-band title (US-2.5): ask the
        source's admin interface, bounded by `stats_timeout`; on failure keep the last."""
        assert self._stats is not None
        try:
            async with asyncio.timeout(self._options.stats_timeout):
                stats = await self._stats(self.source.stream_id)
        except TimeoutError:
            return
        if stats is None:
            return  # unreachable right now: the next beat asks again
        title = (stats.title or "").strip() or None
        if self._icy_title is not None or title == self._admin_title:
            return  # an in-band title arrived meanwhile, or nothing changed
        self._admin_title = title
        self._set_title(title)
        self.hub.set_metadata({"StreamTitle": title or ""})  # ICY listeners see it too


def _average_kbps(frames: Sequence[AudioFrame]) -> int | None:
    seconds = sum(frame.duration for frame in frames)
    return round(sum(len(f.data) for f in frames) * 8 / seconds / 1000) if seconds else None


class RelayManager:
    """Implements `relay.status.RelayControl` for the relays of this node."""

    def __init__(
        self,
        options: RelayOptions,
        clock: Callable[[], datetime],
        heartbeat: HeartbeatSink | None = None,
        positions: HlsPositions | None = None,
    ) -> None:
        self.options = options
        self._clock = clock
        self._heartbeat = heartbeat
        #: Where live playlists stand (shared in a cluster); None: each run starts afresh.
        self.positions = positions
        self._relays: dict[uuid.UUID, Relay] = {}
        self._ads: AdsSource | None = None
        self._stats: StatsSource | None = None
        self._titles: TitleSink | None = None

    def attach(
        self, streams: StreamsBackend, node_name: str, titles: TitleSink | None = None
    ) -> None:
        """Report to the streams service: heartbeats every 30 s, ad markers from it; and
        each title change to `titles` (song history, live feeds)."""

        async def beat(stream_id: uuid.UUID, snapshot: RelaySnapshot, sample: bool) -> None:
            since = snapshot.connected_since
            uptime = (self._clock() - since).total_seconds() if since else 0.0
            await streams.record_heartbeat(
                stream_id,
                listeners=snapshot.listeners,
                uptime_seconds=int(uptime),
                current_title=snapshot.current_title,
                bitrate_kbps=snapshot.bitrate_kbps,
                node=node_name,
                sample=sample,
            )

        self._heartbeat = beat
        self._ads = streams.ad_markers
        self._stats = streams.admin_stats
        self._titles = titles

    def relay(self, stream_id: uuid.UUID) -> Relay | None:
        return self._relays.get(stream_id)

    def relays(self) -> list[Relay]:
        return list(self._relays.values())

    def ready_relay(self, stream_id: uuid.UUID) -> Relay | None:
        """The stream's relay unless it is still starting (`Relay.starting`)."""
        relay = self._relays.get(stream_id)
        if relay is None or (not relay.connected and relay.starting):  # connected: started
            return None
        return relay

    async def wait_relay(self, stream_id: uuid.UUID, seconds: float) -> Relay | None:
        """The stream's relay, once it has audio or `seconds` have passed: a listener who
        arrives while it is starting (just registered, being taken over) is held rather
        than refused. A relay whose source is known to be down is returned at once."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            relay = self._relays.get(stream_id)
            if relay is not None and not relay.starting:
                return relay
            if asyncio.get_running_loop().time() >= deadline:
                return relay
            await asyncio.sleep(0.05)

    async def ensure(self, source: StreamSource) -> None:
        """Start (or restart, its source changed) the relay of a pulled stream; a push
        stream's relay starts when its encoder connects (`push`), here it only takes the
        new name, genre and description."""
        current = self._relays.get(source.stream_id)
        if source.pushed:
            if current is not None:
                current.source = replace(source)
                current.refresh()
            return
        if current is not None:
            if (current.source.source_url, current.source.mount) == (
                source.source_url,
                source.mount,
            ):
                current.source = replace(source)
                current.refresh()
                return
            await self.stop(source.stream_id)
        await self._start(source)

    async def _start(self, source: StreamSource) -> None:
        positions = self.positions
        resume = await positions.load(source.stream_id) if positions is not None else None
        if source.stream_id in self._relays:
            return  # another call started it while the position was read
        relay = Relay(
            source,
            self.options,
            self._clock,
            self._heartbeat,
            self._ads,
            self._stats,
            resume=resume,
            positions=positions,
            titles=self._titles,
        )
        self._relays[source.stream_id] = relay
        relay.start()

    async def push(self, source: StreamSource) -> Relay:
        """The relay an encoder that connected for the push stream `source` feeds (the
        one it fed before, if it reconnects within the relay's life)."""
        current = self._relays.get(source.stream_id)
        if current is None:
            await self._start(source)
            current = self._relays[source.stream_id]
        return current

    async def stop(self, stream_id: uuid.UUID) -> None:
        relay = self._relays.pop(stream_id, None)
        if relay is not None:
            await relay.stop("stream stopped")

    async def disconnect_listeners(self, stream_id: uuid.UUID) -> None:
        relay = self._relays.get(stream_id)
        if relay is not None:
            relay.disconnect_listeners("access changed")

    def snapshot(self, stream_id: uuid.UUID) -> RelaySnapshot | None:
        relay = self._relays.get(stream_id)
        return relay.snapshot() if relay is not None else None

    async def on_shutdown(self, _app: web.Application) -> None:
        """aiohttp `on_shutdown` (before it waits for running handlers): end every MP3
        listener's response, so their handlers return at once and SIGTERM does not wait
        out the shutdown timeout on never-ending streams. The relays stop later, in
        the cleanup."""
        for relay in self._relays.values():
            relay.hub.close("server shutting down")

    async def start_all(self, sources: Sequence[StreamSource]) -> None:
        for source in sources:
            await self.ensure(source)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(stream_id) for stream_id in list(self._relays)))


RELAYS = web.AppKey("relays", RelayManager)
