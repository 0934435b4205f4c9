"""Live streams: registration, configuration, the directory, who may listen (the rules are
in `control.access`), heartbeats and ad markers (backlog US-2.1 – US-2.7, US-5.1,
US-6.3, US-6.4)."""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import urlsplit

import asyncpg
from aiohttp import web

from control import access
from control.access import is_open
from control.accounts import AccountGate
from control.analytics.service import LISTENERS, STREAM, AnalyticsService
from control.grants import Grantee, Grantees
from control.mediacache import TtlCache
from control.monetization.service import PaywallService
from control.security import Principal
from control.streams import queries
from control.streams.grants import StreamGrants
from control.streams.heartbeats import Heartbeat, HeartbeatStore
from control.streams.live import OFFLINE, LiveFigures, live_figures, status_report
from control.streams.probe import ProbeResult, SourceProbe
from control.streams.queries import DirectoryFilter, StreamChanges, StreamRow
from control.streams.schemas import (
    NO_OWN_STREAMS,
    NO_STREAMS,
    AdMarker,
    AdMarkers,
    AdMarkersIn,
    Ingest,
    PlayUrls,
    StreamCreated,
    StreamDetail,
    StreamIn,
    StreamList,
    StreamListQuery,
    StreamOut,
    StreamStatus,
    StreamUpdate,
    StreamUpdated,
)
from mediaserver.clock import Clock, utcnow
from mediaserver.config import Settings
from mediaserver.crypto import SealedDataError, SecretBox
from mediaserver.errors import (
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    Unauthenticated,
    Unprocessable,
)
from relay.status import RelayControl, StreamSource

log = logging.getLogger(__name__)
PUSH_OFF = "Push streams are off on this server (INGEST_PORT is not set)"
#: Told of every heartbeat recorded, with the stream's row (the live feeds).
BeatWatcher = Callable[[StreamRow, Heartbeat], Awaitable[None]]
#: Told a stream went off air for good (disabled, deleted, its owner's account closed).
OffAirWatcher = Callable[[uuid.UUID], Awaitable[None]]


class StreamsService:
    """Streams in PostgreSQL, keys sealed with `box`, relays driven through `relay`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        probe: SourceProbe,
        heartbeats: HeartbeatStore,
        paywall: PaywallService,
        analytics: AnalyticsService,
        relay: RelayControl,
        settings: Settings,
        clock: Clock = utcnow,
        *,
        grants: StreamGrants,
        accounts: AccountGate,
    ) -> None:
        self._pool = pool
        self._grants = grants
        self._box = box
        self._probe = probe
        self._heartbeats = heartbeats
        self._paywall = paywall
        self._analytics = analytics
        self._relay = relay
        self._base_url = settings.base_url
        self._ingest_port = settings.ingest_port
        self._clock = clock
        # The rows the media routes decide by, reused 1 s (`ACCESS_TTL`): every listener,
        # every playlist reload and every segment would otherwise query PostgreSQL.
        # Changes on this node drop the entry; other nodes see them within the second.
        self._rows: TtlCache[uuid.UUID, StreamRow] = TtlCache()
        self._accounts = accounts
        self._grantees = Grantees(pool, accounts)
        self._beat_watchers: list[BeatWatcher] = []
        self._off_air_watchers: list[OffAirWatcher] = []

    async def register(self, principal: Principal, body: StreamIn) -> StreamCreated:
        """Pull: check the source and key with the server's admin interface (422 when that
        fails), store the stream with its key sealed to the row, and start its relay. Push:
        store it with a new source password (sealed the same way), answered once."""
        await self._accounts.check_verified(principal)
        if body.source_type == "push":
            return await self._register_push(principal, body)
        stream_id = uuid.uuid4()
        found, sealed = await self._checked_source(stream_id, body)
        row = await queries.insert(
            self._pool,
            stream_id,
            principal.user_id,
            body,
            found.kind,
            found.sid,
            sealed,
            self._clock(),
        )
        await self._relay.ensure(row.source())
        return StreamCreated(stream_id=stream_id)

    async def repoint(self, principal: Principal, stream_id: uuid.UUID, body: StreamIn) -> bool:
        """Give the caller's stream a new source (checked as at registration) and enable
        it, keeping its id, so its links stay valid; False when it has no such stream."""
        self._rows.pop(stream_id)
        found, sealed = await self._checked_source(stream_id, body)
        row = await queries.repoint(
            self._pool,
            stream_id,
            principal.user_id,
            body,
            found.kind,
            found.sid,
            sealed,
            self._clock(),
        )
        self._rows.pop(stream_id)
        if row is None:
            return False
        await self._relay.ensure(row.source())
        return True

    async def _checked_source(
        self, stream_id: uuid.UUID, body: StreamIn
    ) -> tuple[ProbeResult, bytes]:
        """The source as its admin interface describes it (422 when the check fails), and
        the key sealed to the stream."""
        assert body.shoutcast_url and body.mount and body.stream_key  # StreamIn checks it
        key = body.stream_key.get_secret_value()
        found = await self._probe.probe(body.shoutcast_url, key, body.mount, body.sid)
        return found, self._box.seal(key, stream_id.bytes)

    async def _register_push(self, principal: Principal, body: StreamIn) -> StreamCreated:
        if self._ingest_port is None:
            raise Unprocessable(PUSH_OFF)
        stream_id = uuid.uuid4()
        password = secrets.token_urlsafe(18)
        mount = body.mount or f"/live-{stream_id.hex[:8]}"
        sealed = self._box.seal(password, stream_id.bytes)
        try:
            row = await queries.insert(
                self._pool,
                stream_id,
                principal.user_id,
                body.model_copy(update={"mount": mount, "shoutcast_url": ""}),
                "push",
                None,
                sealed,
                self._clock(),
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"Mount {mount} is taken; choose another") from None
        await self._relay.ensure(row.source())  # every node learns it is pushed
        return StreamCreated(stream_id=stream_id, ingest=self._ingest(mount, password))

    def _ingest(self, mount: str, password: str) -> Ingest:
        assert self._ingest_port is not None
        host = urlsplit(self._base_url).hostname or "localhost"
        url = f"icecast://{host}:{self._ingest_port}{mount}"
        return Ingest(url=url, host=host, port=self._ingest_port, mount=mount, password=password)

    async def rotate_source_password(self, principal: Principal, stream_id: uuid.UUID) -> Ingest:
        """A new source password for a push stream (the old one stops working at once;
        an encoder connected with it stays connected)."""
        row = await self._owned(principal, stream_id)
        if row.server_kind != "push":
            raise Unprocessable("Only push streams have a source password")
        if self._ingest_port is None:
            raise Unprocessable(PUSH_OFF)
        password = secrets.token_urlsafe(18)
        await queries.set_key(self._pool, stream_id, self._box.seal(password, stream_id.bytes))
        self._rows.pop(stream_id)
        return self._ingest(row.mount, password)

    async def push_source(self, mount: str, password: str) -> StreamSource | None:
        """The live push stream an encoder may send to `mount` with `password`, else None
        (unknown mount and wrong password alike: nothing tells them apart)."""
        row = await queries.push_by_mount(self._pool, mount)
        expected = self._box.open(row.stream_key_enc, row.stream_id.bytes) if row else ""
        ok = hmac.compare_digest(expected.encode(), password.encode())
        return row.source() if row is not None and row.live and ok else None

    async def update(
        self, principal: Principal, stream_id: uuid.UUID, body: StreamUpdate
    ) -> StreamUpdated:
        """Change the fields sent; `enabled` starts or stops the relay, a running relay
        picks up the new name/genre/description, and when access gets stricter (public →
        private, monetization switched on) its current listeners are disconnected so
        their players come back through the access check (US-2.2: "block unauthorized
        connections")."""
        self._rows.pop(stream_id)
        before = await self._owned(principal, stream_id)
        sent = body.changes()
        changes = StreamChanges(
            name=sent.get("name"),
            set_genre="genre" in sent,
            genre=sent.get("genre"),
            set_description="description" in sent,
            description=sent.get("description"),
            visibility=sent.get("visibility"),
            monetization_enabled=sent.get("monetization_enabled"),
            enabled=sent.get("enabled"),
        )
        row = await queries.update(self._pool, stream_id, changes, self._clock())
        self._rows.pop(stream_id)  # a request may have cached the old row
        if row is None:
            raise access.STREAM.not_found()
        if sent.get("enabled") is False:
            await self._stop(stream_id)
        elif row.live:
            await self._relay.ensure(row.source())
            if _stricter(before, row):
                await self._relay.disconnect_listeners(stream_id)
        return StreamUpdated(stream_id=stream_id, updated_fields=list(sent))

    async def delete(self, principal: Principal, stream_id: uuid.UUID) -> None:
        """Soft delete; the relay stops and its listeners are disconnected."""
        self._rows.pop(stream_id)
        await self._owned(principal, stream_id)
        if not await queries.soft_delete(self._pool, stream_id, self._clock()):
            raise access.STREAM.not_found()
        self._rows.pop(stream_id)
        await self._stop(stream_id)
        await self._heartbeats.forget(stream_id)

    async def owner_disabled(self, owner_id: uuid.UUID) -> None:
        """The owner's account was disabled: its streams go off air (`enabled` false, the
        relays stopped, their listeners cut; in a cluster, wherever they run)."""
        await self._off_air(owner_id, delete=False)

    async def owner_deleted(self, owner_id: uuid.UUID) -> None:
        """The owner's account was deleted: its streams stop and leave the directory."""
        await self._off_air(owner_id, delete=True)

    async def _off_air(self, owner_id: uuid.UUID, *, delete: bool) -> None:
        stopped = await queries.off_air_owned(self._pool, owner_id, self._clock(), delete)
        for stream_id in stopped:
            self._rows.pop(stream_id)
            await self._stop(stream_id)
            if delete:
                await self._heartbeats.forget(stream_id)

    async def directory(self, principal: Principal | None, query: StreamListQuery) -> StreamList:
        """Public enabled streams (plus the caller's own private ones), newest first; with
        `mine`, every stream of the caller, disabled ones included."""
        limit, offset = query.per_page, query.offset
        only = DirectoryFilter(genre=query.genre, search=query.q)
        if query.mine:
            if principal is None:
                raise Unauthenticated("Sign in to list your own streams")
            rows, total = await queries.owned(self._pool, principal.user_id, limit, offset)
        else:
            viewer = principal.user_id if principal is not None else None
            if query.on_air:  # decided by the relays, not the rows: filter, then page
                rows, total = await queries.directory(self._pool, viewer, None, 0, only)
            else:
                rows, total = await queries.directory(self._pool, viewer, limit, offset, only)
        beats = await self._heartbeats.last_many(r.stream_id for r in rows)
        now = self._clock()
        streams = [self._out(r, beats.get(r.stream_id), now) for r in rows]
        if query.on_air and not query.mine:
            streams = [s for s in streams if s.on_air]
            total, streams = len(streams), streams[offset : offset + limit]
        empty = NO_OWN_STREAMS if query.mine else NO_STREAMS
        return StreamList(
            streams=streams,
            page=query.page,
            per_page=limit,
            total=total,
            message=empty if total == 0 else None,
        )

    async def detail(self, principal: Principal | None, stream_id: uuid.UUID) -> StreamDetail:
        """One stream's metadata (US-2.5 visibility rule), with `play_urls` (signed when
        the stream is private or monetized) when the media routes would serve the caller."""
        row = await self._readable(principal, stream_id, live_only=False, paywall_public=False)
        out = self._out(row, await self._heartbeats.last(stream_id), self._clock())
        return StreamDetail(**dict(out), play_urls=await self._play_urls(principal, row))

    async def _play_urls(self, principal: Principal | None, row: StreamRow) -> PlayUrls | None:
        try:
            await self._may_listen(principal, row)
        except (Unauthenticated, Forbidden, NotFound):
            return None
        return self._grants.play_urls(self._base_url, row, principal)

    async def play_access(self, stream_id: uuid.UUID, grant: str) -> StreamRow:
        """The stream a play link (`?grant=` of `play_urls`) opens, checked on every use
        (`live.mp3` connect, `live.m3u8` reload): 404 when it is gone or disabled, 403
        when the grant is forged, expired or predates a change of the rules, and 403 once
        its user may no longer listen (account deleted, subscription lapsed; decided as
        for that user's token, the answer reused for a second)."""
        row = await self._media_row(stream_id)
        if not row.enabled:
            raise access.STREAM.not_found()
        grantee = self._grants.play_user(row, grant)
        if grantee is None:
            raise Forbidden("This play link is invalid or has expired; fetch the stream again")
        await self._may_still_listen(grantee, row)
        return row

    async def _may_listen(self, principal: Principal | None, row: StreamRow) -> None:
        """The media routes' rule: private needs access, paid (public too) a subscription."""
        await access.STREAM.check_read(
            principal, row, self._paywall, enabled=row.enabled, live_only=True, paywall_public=True
        )

    async def _may_still_listen(self, grantee: Grantee, row: StreamRow) -> None:
        """`_may_listen` for the user of a play grant (`Grantees`: the account too)."""
        key = (row.stream_id, *access.rules_of(row))
        await self._grantees.require(grantee, key, lambda user: self._may_listen(user, row))

    async def still_listening(
        self, stream_id: uuid.UUID, principal: Principal | None, grant: str | None
    ) -> bool:
        """Whether an MP3 listener let in by `principal` (its token) or by a play `grant`
        may go on listening: the access rules again, for that user (account, subscription;
        the rules themselves changing ends every listener anyway). Not the expiry of the
        token or link: a player cannot renew them in the middle of a stream."""
        try:
            row = await self._media_row(stream_id)
            if not row.enabled or is_open(row):
                return row.enabled
            if grant is None:
                if principal is not None:
                    await self._accounts.check(principal)
                await self._may_listen(principal, row)
                return True
            grantee = self._grants.play_user(row, grant, expired_too=True)
            if grantee is None:
                return False
            await self._may_still_listen(grantee, row)
        except (Forbidden, Unauthenticated, NotFound):
            return False
        return True

    async def segment_access(self, stream_id: uuid.UUID, grant: str) -> None:
        """Whether a segment grant (in the segment URLs of a playlist we served) still
        opens the stream's segments: 403 once it expired or the rules changed."""
        row = await self._media_row(stream_id)
        if not row.enabled:
            raise access.STREAM.not_found()
        if not self._grants.segment_ok(row, grant):
            raise Forbidden("This segment link has expired; reload the playlist")

    async def status(self, principal: Principal | None, stream_id: uuid.UUID) -> StreamStatus:
        """US-2.5 live status; 503 when the relay has been offline for over 5 minutes.
        A public stream's status is public, monetized or not (the audio is paywalled)."""
        row = await self.readable(principal, stream_id)
        beat = await self._heartbeats.last(stream_id)
        snapshot = self._relay.snapshot(stream_id) if row.enabled else None
        return status_report(row, snapshot, beat, self._clock())

    async def readable(self, principal: Principal | None, stream_id: uuid.UUID) -> StreamRow:
        """The stream if `principal` may read its status (and its history and live
        events): a private one needs access, a monetized private one a subscription."""
        return await self._readable(principal, stream_id, live_only=False, paywall_public=False)

    def figures(self, stream_id: uuid.UUID, beat: Heartbeat | None, now: datetime) -> LiveFigures:
        """What is known about a live (enabled) stream now: this node's relay, else its
        last heartbeat."""
        return live_figures(self._relay.snapshot(stream_id), beat, now)

    def open_row(self, stream_id: uuid.UUID) -> StreamRow | None:
        """The stream when memory holds it enabled, public and free (`media_access` then
        passes anyone, without waiting), else None: await `media_access`, which decides."""
        row = self._rows.get(stream_id)
        return row if row is not None and row.enabled and is_open(row) else None

    async def media_access(self, principal: Principal | None, stream_id: uuid.UUID) -> StreamRow:
        """The stream a media route may serve to `principal`, or the error to answer:
        404 unknown/deleted/disabled, 401/403 private, 403 "Subscription required"."""
        row = self._rows.get(stream_id) or await self._media_row(stream_id)
        if not (row.enabled and is_open(row)):  # an open stream has nothing to check
            await self._may_listen(principal, row)
        return row

    async def record_heartbeat(
        self,
        stream_id: uuid.UUID,
        *,
        listeners: int,
        uptime_seconds: int,
        cpu_usage_percent: float | None = None,
        memory_usage_bytes: int | None = None,
        current_title: str | None = None,
        bitrate_kbps: int | None = None,
        node: str | None = None,
        sample: bool = True,
    ) -> None:
        """Store a relay's figures as its last heartbeat, stamped now by the service clock,
        and add `listeners` to today's analytics (US-2.4, US-5.1). The in-process relay
        calls this every 30 s, external relays through the heartbeat route; the relay's
        extra beats (on connect, after a settings change) pass `sample=False`: they refresh
        the status without counting the same listeners again.
        404 for an unknown stream, 410 when it is disabled or deleted."""
        row = await queries.by_id(self._pool, stream_id)
        if row is None:
            raise access.STREAM.not_found()
        if not row.live:
            raise Gone("Stream is disabled or deleted")
        last = await self._heartbeats.last(stream_id)
        peak = listeners
        # The same run of the relay (its uptime only grows): the peak carries on.
        if last is not None and last.uptime_seconds <= uptime_seconds:
            peak = max(peak, last.listener_peak or last.listeners)
        beat = Heartbeat(
            at=self._clock(),
            listeners=listeners,
            uptime_seconds=uptime_seconds,
            cpu_usage_percent=cpu_usage_percent,
            memory_usage_bytes=memory_usage_bytes,
            current_title=current_title,
            bitrate_kbps=bitrate_kbps,
            node=node,
            listener_peak=peak,
        )
        await self._heartbeats.record(stream_id, beat)
        for watcher in self._beat_watchers:
            await watcher(row, beat)
        if sample:
            await self._analytics.record(STREAM, stream_id, LISTENERS, beat.listeners)

    async def set_ad_markers(
        self, principal: Principal, stream_id: uuid.UUID, body: AdMarkersIn
    ) -> AdMarkers:
        """Replace the stream's ad markers (US-6.4); they come back sorted by position."""
        row = await self._owned(principal, stream_id)
        async with self._pool.acquire() as conn, conn.transaction():
            if not await queries.replace_ads(conn, stream_id, body.ad_markers, self._clock()):
                raise access.STREAM.not_found()
            markers = await queries.ads(conn, stream_id)
        if row.live:
            await self._relay.ensure(row.source())  # the live packager picks them up now
        return AdMarkers(stream_id=stream_id, ad_markers=markers)

    async def list_ad_markers(self, principal: Principal, stream_id: uuid.UUID) -> AdMarkers:
        await self._owned(principal, stream_id)
        return AdMarkers(stream_id=stream_id, ad_markers=await self.ad_markers(stream_id))

    async def ad_markers(self, stream_id: uuid.UUID) -> list[AdMarker]:
        """The stream's ad markers by position, for the HLS packager."""
        return await queries.ads(self._pool, stream_id)

    def on_heartbeat(self, watcher: BeatWatcher) -> None:
        """Call `watcher` with every heartbeat recorded (after it is stored)."""
        self._beat_watchers.append(watcher)

    def on_off_air(self, watcher: OffAirWatcher) -> None:
        """Call `watcher` with each stream taken off air (after its relay stopped)."""
        self._off_air_watchers.append(watcher)

    async def _stop(self, stream_id: uuid.UUID) -> None:
        await self._relay.stop(stream_id)
        for watcher in self._off_air_watchers:
            await watcher(stream_id)

    async def cached_row(self, stream_id: uuid.UUID) -> StreamRow | None:
        """The stream (not deleted), reused for a second: for frequent, non-deciding reads."""
        try:
            return await self._media_row(stream_id)
        except NotFound:
            return None

    def forget(self, stream_id: uuid.UUID) -> None:
        """Drop the remembered row of a stream another node changed."""
        self._rows.pop(stream_id)

    async def enabled_sources(self) -> list[StreamSource]:
        """Every enabled, non-deleted stream: the relays a node starts with."""
        return [row.source() for row in await queries.enabled(self._pool)]

    async def source_for(self, stream_id: uuid.UUID) -> StreamSource | None:
        """The stream's source while it is enabled and not deleted, else None."""
        row = await queries.by_id(self._pool, stream_id)
        return row.source() if row is not None and row.live else None

    async def admin_stats(self, stream_id: uuid.UUID) -> ProbeResult | None:
        """Now-playing figures from the source's admin interface (the stored key never
        leaves this service); None when unavailable."""
        row = await queries.by_id(self._pool, stream_id)
        if row is None or not row.live or row.server_kind == "push":
            return None  # a push stream's title comes with its audio (`relay.ingest`)
        try:
            key = self._box.open(row.stream_key_enc, row.stream_id.bytes)
        except SealedDataError:
            log.warning("stream key does not decrypt", extra={"stream_id": str(stream_id)})
            return None
        return await self._probe.fetch_stats(row.source(), key)

    async def owner_of(self, stream_id: uuid.UUID) -> uuid.UUID | None:
        """For analytics reports: the owner of a non-deleted stream."""
        return await queries.owner_of(self._pool, stream_id)

    async def _owned(self, principal: Principal, stream_id: uuid.UUID) -> StreamRow:
        row = await self._existing(stream_id)
        access.STREAM.check_owner(principal, row.owner_id)
        return row

    async def _readable(
        self,
        principal: Principal | None,
        stream_id: uuid.UUID,
        *,
        live_only: bool,
        paywall_public: bool,
    ) -> StreamRow:
        row = await self._existing(stream_id)
        await access.STREAM.check_read(
            principal,
            row,
            self._paywall,
            enabled=row.enabled,
            live_only=live_only,
            paywall_public=paywall_public,
        )
        return row

    async def _existing(self, stream_id: uuid.UUID) -> StreamRow:
        row = await self._load(stream_id)
        if row is None:
            raise access.STREAM.not_found()
        return row

    async def _media_row(self, stream_id: uuid.UUID) -> StreamRow:
        """`_existing`, reused for a second (`self._rows`)."""
        row = self._rows.get(stream_id) or await self._rows.load(
            stream_id, lambda: self._load(stream_id)
        )
        if row is None:
            raise access.STREAM.not_found()
        return row

    async def _load(self, stream_id: uuid.UUID) -> StreamRow | None:
        row = await queries.by_id(self._pool, stream_id)
        return row if row is not None and row.deleted_at is None else None

    def _out(self, row: StreamRow, beat: Heartbeat | None, now: datetime) -> StreamOut:
        figures = self.figures(row.stream_id, beat, now) if row.live else OFFLINE
        base = f"{self._base_url}/v1/streams/{row.stream_id}"
        return StreamOut(
            stream_id=row.stream_id,
            name=row.name,
            genre=row.genre,
            description=row.description,
            visibility=row.visibility,
            monetization_enabled=row.monetization_enabled,
            listeners=figures.listeners,
            on_air=figures.connected,
            current_title=figures.current_title if figures.connected else None,
            live_mp3_url=f"{base}/live.mp3",
            live_hls_url=f"{base}/live.m3u8",
            owner_id=row.owner_id,
            server_kind=row.server_kind,
            enabled=row.enabled,
            created_at=row.created_at,
        )


def _stricter(before: StreamRow, after: StreamRow) -> bool:
    """Whether some listener allowed before may be refused now."""
    private = before.visibility == "public" and after.visibility == "private"
    return private or (after.monetization_enabled and not before.monetization_enabled)


STREAMS = web.AppKey("streams_service", StreamsService)
