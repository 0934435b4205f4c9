"""On-demand playlists: creating, reading, replacing and deleting them (backlog US-3.3 –
US-3.6, US-11.1), and the bookkeeping of their external tracks' fetch jobs.

Every write to a playlist (an edit, a track finishing, the manifest) happens in a
transaction holding the playlist's row lock, so they take turns; the combined manifest is
rewritten by whichever of them leaves every track ready (`ManifestWriter.refresh`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import asyncpg
from aiohttp import web

from control import access
from control.monetization.service import PaywallService
from control.playlists import queries
from control.playlists.fetch import EXTERNAL_TRACK, ExternalAudio, TrackFetcher, track_folder
from control.playlists.manifest import ManifestWriter, manifest_key
from control.playlists.queries import PlaylistRow, TrackRow
from control.playlists.schemas import (
    NO_PLAYLISTS,
    PlaylistCreated,
    PlaylistIn,
    PlaylistList,
    PlaylistOut,
    PlaylistSummary,
    PlaylistUpdated,
    StreamUrls,
    TrackOut,
)
from control.playlists.tracks import Layout, TrackChecker, lay_out
from control.schemas import PageQuery
from control.security import Principal
from control.uploads.service import UploadsService
from mediaserver.clock import Clock, utcnow
from mediaserver.db import Connection
from mediaserver.jobs import JobQueue
from mediaserver.storage import ObjectStore, StoreError

log = logging.getLogger(__name__)

#: A track whose upload was deleted (with `?force=true`): `stream.*` answer 409 naming it.
UPLOAD_DELETED = "its upload was deleted"


#: Told the id of a playlist that changed (`PlaylistsService.on_change`).
ChangeListener = Callable[[uuid.UUID], None]


def stream_urls(origin: str, playlist_id: uuid.UUID) -> StreamUrls:
    base = f"{origin}/v1/playlists/{playlist_id}"
    return StreamUrls(hls=f"{base}/stream.m3u8", mp3=f"{base}/stream.mp3")


class PlaylistsService:
    """Playlists in PostgreSQL; registers the `external_track` job kind."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: ObjectStore,
        jobs: JobQueue,
        uploads: UploadsService,
        audio: ExternalAudio,
        paywall: PaywallService,
        hls_seconds: int,
        clock: Clock = utcnow,
    ) -> None:
        self._pool = pool
        self._store = store
        self._jobs = jobs
        self._paywall = paywall
        self._clock = clock
        self._checker = TrackChecker(uploads.get_ready, audio.check)
        self._objects = uploads.objects
        self._listeners: list[ChangeListener] = []
        self.manifests = ManifestWriter(store, uploads.manifest)
        self.fetcher = TrackFetcher(pool, store, audio, hls_seconds, self.finish_track)
        jobs.register(EXTERNAL_TRACK, self.fetcher.run, self.fetcher.failed)

    def on_change(self, listener: ChangeListener) -> None:
        """`listener(playlist_id)` runs after every change of a playlist made through this
        node (its row, tracks or manifest) is committed: media caches drop it."""
        self._listeners.append(listener)

    def _changed(self, playlist_id: uuid.UUID) -> None:
        for listener in self._listeners:
            listener(playlist_id)

    async def create(self, principal: Principal, body: PlaylistIn, origin: str) -> PlaylistCreated:
        """Check every track (422), store the playlist, queue the fetch of its external
        tracks; when every track is ready already, write its combined manifest."""
        checked = await self._checker.check_all(principal.user_id, body.tracks, set())
        playlist_id = uuid.uuid4()
        layout = lay_out(playlist_id, checked, [])
        async with self._pool.acquire() as conn, conn.transaction():
            await queries.insert(conn, playlist_id, principal.user_id, _meta(body), self._clock())
            await self._write_tracks(conn, playlist_id, layout)
        return PlaylistCreated(
            playlist_id=playlist_id, stream_urls=stream_urls(origin, playlist_id)
        )

    async def replace(
        self, principal: Principal, playlist_id: uuid.UUID, body: PlaylistIn
    ) -> PlaylistUpdated:
        """US-3.5: the whole playlist in one transaction; nothing changes when a track is
        refused. Tracks kept keep their ids (and external tracks their fetched copy)."""
        current = await self._owned(principal, playlist_id)
        old = await queries.tracks(self._pool, playlist_id)
        fetched = {t.external_url for t in old if t.external_url and t.status == "ready"}
        checked = await self._checker.check_all(current.owner_id, body.tracks, fetched)
        async with self._pool.acquire() as conn, conn.transaction():
            if await queries.by_id(conn, playlist_id, lock=True) is None:
                raise access.PLAYLIST.not_found()  # deleted meanwhile
            layout = lay_out(playlist_id, checked, await queries.tracks(conn, playlist_id))
            await queries.update(conn, playlist_id, _meta(body), self._clock())
            await self._write_tracks(conn, playlist_id, layout)
        self._changed(playlist_id)
        for track in layout.dropped:
            if track.external_key is not None:
                await self._discard(f"{track_folder(playlist_id, track.track_id)}/")
        return PlaylistUpdated(playlist_id=playlist_id)

    async def _write_tracks(self, conn: Connection, playlist_id: uuid.UUID, layout: Layout) -> None:
        await queries.replace_tracks(conn, playlist_id, layout.rows)
        for track_id in layout.fetch:
            await self._jobs.enqueue(
                conn, EXTERNAL_TRACK, track_id, {"playlist_id": str(playlist_id)}
            )
        await self.manifests.refresh(conn, playlist_id)

    async def delete(self, principal: Principal, playlist_id: uuid.UUID) -> None:
        """US-3.6: soft delete; its media (manifest, fetched tracks) is removed at once."""
        await self._owned(principal, playlist_id)
        if not await queries.soft_delete(self._pool, playlist_id, self._clock()):
            raise access.PLAYLIST.not_found()
        self._changed(playlist_id)
        await self._discard(f"playlists/{playlist_id}/")

    async def owner_deleted(self, owner_id: uuid.UUID) -> None:
        """The owner's account was deleted: its playlists go as if it deleted each."""
        for playlist_id in await queries.owned_ids(self._pool, owner_id):
            if await queries.soft_delete(self._pool, playlist_id, self._clock()):
                self._changed(playlist_id)
                await self._discard(f"playlists/{playlist_id}/")

    async def detail(
        self, principal: Principal | None, playlist_id: uuid.UUID, origin: str
    ) -> PlaylistOut:
        """US-3.4: the playlist and its tracks, for whoever may read it."""
        row = await queries.by_id(self._pool, playlist_id)
        if row is None:
            raise access.PLAYLIST.not_found()
        await access.PLAYLIST.check_read(principal, row, self._paywall, paywall_public=False)
        tracks = await queries.tracks(self._pool, playlist_id)
        return PlaylistOut(**_summary(row, origin).model_dump(), tracks=list(map(_track, tracks)))

    async def list_mine(self, principal: Principal, query: PageQuery, origin: str) -> PlaylistList:
        """The caller's playlists, newest first, with US-11.1's message when there are none."""
        rows, total = await queries.owned(
            self._pool, principal.user_id, query.per_page, query.offset
        )
        return PlaylistList(
            playlists=[_summary(row, origin) for row in rows],
            message=NO_PLAYLISTS if total == 0 else None,
            page=query.page,
            per_page=query.per_page,
            total=total,
        )

    async def finish_track(
        self, track_id: uuid.UUID, duration: float | None, error: str | None
    ) -> bool:
        """An external track is fetched (`error` None) or failed for good; the playlist's
        manifest is written when that was its last track. False when the track is gone."""
        async with self._pool.acquire() as conn, conn.transaction():
            track = await queries.track(conn, track_id)
            if track is None or await queries.by_id(conn, track.playlist_id, lock=True) is None:
                return False
            if not await queries.finish_track(conn, track_id, duration, error):
                return False
            if error is None:
                await self.manifests.refresh(conn, track.playlist_id)
        self._changed(track.playlist_id)
        return True

    async def owner_of(self, playlist_id: uuid.UUID) -> uuid.UUID | None:
        """For analytics reports (US-5.4): the live playlist's owner."""
        return await queries.owner_of(self._pool, playlist_id)

    async def upload_in_use(self, upload_id: uuid.UUID) -> str | None:
        """The uploads service's usage check: which live playlists play the upload."""
        titles = await queries.uses(self._pool, upload_id)
        return ", ".join(f"playlist '{title}'" for title in titles) or None

    async def upload_deleted(self, upload_id: uuid.UUID) -> None:
        """The uploads service's after-delete hook: every live playlist playing the upload
        gets its tracks of it `failed` (UPLOAD_DELETED) and stops being `hls_ready`, its
        stored manifest removed, so players get the 409 naming the track rather than
        segments that 404 mid-play (and `stream.mp3` no longer skips the track unsaid)."""
        for playlist_id in await queries.playing(self._pool, upload_id):
            async with self._pool.acquire() as conn, conn.transaction():
                if await queries.by_id(conn, playlist_id, lock=True) is None:
                    continue  # deleted meanwhile
                await queries.fail_upload_tracks(conn, playlist_id, upload_id, UPLOAD_DELETED)
                await self.manifests.refresh(conn, playlist_id)
                # Under the row lock, so no writer of a newer manifest runs in between.
                try:
                    await self._store.delete(manifest_key(playlist_id))
                except StoreError:  # never served now that the playlist is not hls_ready
                    log.exception("could not delete a manifest", extra={"playlist": playlist_id})
            self._changed(playlist_id)

    async def _owned(self, principal: Principal, playlist_id: uuid.UUID) -> PlaylistRow:
        row = await queries.by_id(self._pool, playlist_id)
        if row is None:
            raise access.PLAYLIST.not_found()
        access.PLAYLIST.check_owner(principal, row.owner_id)
        return row

    async def _discard(self, prefix: str) -> None:
        self._objects.purge_prefix(prefix)
        try:
            await self._store.delete_prefix(prefix)
        except StoreError:
            # The rows no longer point at these objects; they are only storage to reclaim.
            log.exception("could not delete a playlist's objects", extra={"prefix": prefix})


def _meta(body: PlaylistIn) -> tuple[str, str, str, bool]:
    return body.title, body.description or "", body.visibility, body.monetization_enabled


def _summary(row: PlaylistRow, origin: str) -> PlaylistSummary:
    return PlaylistSummary(
        playlist_id=row.playlist_id,
        title=row.title,
        description=row.description,
        visibility=row.visibility,
        monetization_enabled=row.monetization_enabled,
        hls_ready=row.hls_ready,
        track_count=row.track_count,
        stream_urls=stream_urls(origin, row.playlist_id),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _track(row: TrackRow) -> TrackOut:
    return TrackOut(
        track_id=row.track_id,
        source_type=row.source_type,
        upload_id=row.upload_id,
        url=row.external_url,
        title=row.title,
        artist=row.artist,
        duration_seconds=row.duration_seconds,
        status=row.status,
        error_message=row.error_message,
    )


#: The node's playlists service.
PLAYLISTS = web.AppKey("playlists_service", PlaylistsService)
