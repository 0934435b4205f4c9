"""Tracks: a DJ's library built on uploads (issue 13). A track is an `uploads` row (same id,
object-store folder, job queue and status) plus its catalog row; see `control.tracks.ingest`
(the form), `control.tracks.process` (the job) and `control.tracks.view` (what is shown).

Who reads what: public and unlisted tracks, anyone; private ones, the owner and admins
(404 for anyone else); deleted ones, nobody (404). Changes: the owner or an admin (403 for
anyone else who can see the track). The lossless rendition is the owner's (and an admin's),
or anyone's when the track is downloadable. Deleting goes through the uploads service, so
playlists and episodes using the track are asked first (409 unless `force`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import asyncpg
from aiohttp import web

from control.accounts import AccountGate
from control.mediacache import Body, TtlCache
from control.security import Principal
from control.tracks import queries
from control.tracks.ingest import MIME, SOURCE_NAME, Ingest, Received
from control.tracks.process import PROCESS, TrackProcessor
from control.tracks.queries import NewTrack, TrackRow
from control.tracks.quotas import Ceiling, Quota, quota_of
from control.tracks.schemas import TrackFields, TrackOut
from control.tracks.view import TrackView
from control.uploads import queries as upload_queries
from control.uploads.form import FormField
from control.uploads.queries import NewUpload
from control.uploads.service import UploadsService, clean_filename, upload_folder
from hls.ladder import ARTWORK_NAME
from mediaserver.clock import Clock, utcnow
from mediaserver.config import Settings
from mediaserver.errors import Conflict, Forbidden, InvalidInput, NotFound
from mediaserver.jobs import JobQueue
from mediaserver.storage import ObjectNotFound, ObjectStore, StoreError

log = logging.getLogger(__name__)

RETRY_AFTER = "5"
_REMEMBERED_PLAYS = 100_000  # (track, listener, day) this node has already counted


def track_not_found() -> NotFound:
    return NotFound("Track not found")


@dataclass(frozen=True, slots=True)
class Progressive:
    """One rendition's progressive file, as `/stream` sends it."""

    key: str
    size: int
    etag: str
    content_type: str
    private: bool


class TracksService:
    """Tracks in PostgreSQL and the object store; registers the `track.process` job kind."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: ObjectStore,
        jobs: JobQueue,
        uploads: UploadsService,
        settings: Settings,
        clock: Clock = utcnow,
        accounts: AccountGate | None = None,
    ) -> None:
        self._pool = pool
        self._store = store
        self._jobs = jobs
        self._uploads = uploads
        self._clock = clock
        self._accounts = accounts
        self._ceiling = Ceiling.of_tracks(settings)
        self._ingest = Ingest(store, settings)
        self._view = TrackView(pool)
        self.processor = TrackProcessor(pool, store, settings.hls_segment_seconds, clock)
        jobs.register(PROCESS, self.processor.run, self.processor.failed)
        #: The HLS objects, waveforms and artwork of ready tracks (they never change), in
        #: the uploads' cache: one `MEDIA_CACHE_BYTES` budget for all upload media.
        self.objects = uploads.objects
        self._ready_rows: TtlCache[uuid.UUID, TrackRow] = TtlCache()
        self._played: OrderedDict[tuple[uuid.UUID, str, str], None] = OrderedDict()

    async def quota(self, principal: Principal) -> Quota:
        """The caller's upload plan, its effective limits and what is used of it."""
        return await quota_of(
            self._pool, self._ceiling, principal.user_id, principal.is_admin, self._clock()
        )

    async def create(
        self,
        principal: Principal,
        form: Callable[[int], AsyncIterator[FormField]],
        origin: str,
    ) -> TrackOut:
        """Store the audio (refused unless it parses as accepted audio within the limits
        of the caller's plan), record the upload and the track and queue its processing in
        one transaction. `form(max_audio_bytes)` reads the body, only once the plan's
        monthly uploads and storage are known to allow one more (429 otherwise). The source
        is durable before this returns; on any failure nothing is left behind."""
        if self._accounts is not None:
            await self._accounts.check_verified(principal)
        quota = await self.quota(principal)
        quota.check()
        track_id = uuid.uuid4()
        folder = upload_folder(principal.user_id, track_id)
        tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="track-"))
        try:
            fields = form(quota.max_bytes)
            received = await self._ingest.receive(fields, folder, tmp, quota.max_seconds)
            await self._record(principal, track_id, folder, received)
        except BaseException:
            await self._discard(folder)
            raise
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)
        return await self.detail(principal, track_id, origin)

    async def _record(
        self, principal: Principal, track_id: uuid.UUID, folder: str, received: Received
    ) -> None:
        values = _catalog_values(received, self._clock())
        audio = received.audio
        upload = NewUpload(
            upload_id=track_id,
            owner_id=principal.user_id,
            filename=clean_filename(audio.filename, f"track.{audio.info.format}"),
            title=values["title"],
            artist=values["artist"],
            content_type=MIME.get(audio.info.format, "application/octet-stream"),
            size_bytes=audio.size,
            source_key=folder + SOURCE_NAME,
            hls_prefix=f"{folder}hls",
            created_at=values["created_at"],
        )
        async with self._pool.acquire() as conn, conn.transaction():
            # Again with the real size, the DJ's row locked: two uploads at once cannot
            # both take the last of the plan.
            quota = await quota_of(
                conn, self._ceiling, principal.user_id, principal.is_admin, self._clock(),
                lock=True,
            )  # fmt: skip
            quota.check(audio.size)
            await upload_queries.insert(conn, upload)
            await queries.insert(conn, NewTrack(track_id, principal.user_id, values))
            await self._jobs.enqueue(conn, PROCESS, track_id)

    async def _discard(self, folder: str) -> None:
        try:
            await self._store.delete_prefix(folder)
        except StoreError:
            log.exception("could not delete a refused track", extra={"folder": folder})

    async def detail(
        self, principal: Principal | None, track_id: uuid.UUID, origin: str
    ) -> TrackOut:
        """The track, for whoever may read it (404 otherwise)."""
        row = await self._readable(principal, track_id)
        return await self._view.render(row, _is_owner(principal, row), origin)

    async def update(
        self, principal: Principal, track_id: uuid.UUID, fields: TrackFields, origin: str
    ) -> TrackOut:
        """Change the metadata sent (owner or admin)."""
        row = await self._editable(principal, track_id)
        changes = _changes(fields)
        if not changes:
            raise InvalidInput("Send at least one field to change.")
        async with self._pool.acquire() as conn, conn.transaction():
            await queries.update(conn, track_id, changes, self._clock())
        self._ready_rows.pop(track_id)
        return await self.detail(principal, row.track_id, origin)

    async def delete(self, principal: Principal, track_id: uuid.UUID, force: bool) -> None:
        """Delete the track and its media (owner or admin): 409 while a playlist or
        episode uses it unless `force` (the uploads service's checks and hooks)."""
        row = await self._editable(principal, track_id)
        await self._uploads.delete(principal, track_id, force)
        await queries.soft_delete(self._pool, track_id, self._clock())
        self._ready_rows.pop(track_id)
        self.objects.purge_prefix(upload_folder(row.owner_id, track_id))

    async def owner_deleted(self, owner_id: uuid.UUID) -> None:
        """The owner's account was deleted: their tracks are listed and served nowhere
        (their objects stay, as their uploads' do)."""
        for track_id in await queries.soft_delete_owned(self._pool, owner_id, self._clock()):
            self._ready_rows.pop(track_id)
        self.objects.purge_prefix(f"uploads/audio/{owner_id}/")

    async def media(
        self, principal: Principal | None, track_id: uuid.UUID, name: str
    ) -> tuple[Body, bool]:
        """A ready track's master playlist, rendition playlist, segment, waveform or
        artwork, and whether it is private (cached only by the caller)."""
        row = await self._playable(principal, track_id)
        if name == ARTWORK_NAME and row.artwork_key is None:
            raise NotFound("This track has no artwork")
        key = upload_folder(row.owner_id, track_id) + name
        try:
            body = self.objects.cached(key) or await self.objects.get(key)
        except (ObjectNotFound, ValueError):
            raise NotFound("Not found") from None
        return body, row.visibility == "private"

    async def progressive(
        self, principal: Principal | None, track_id: uuid.UUID, quality: str, fmt: str | None
    ) -> Progressive:
        """The rendition's single file for `/stream`: 404 naming the renditions there are
        when none matches; the lossless one only for the owner or a downloadable track."""
        row = await self._playable(principal, track_id)
        owner = _is_owner(principal, row)
        choices = [
            r for r in await queries.renditions(self._pool, track_id)
            if owner or r.quality != "lossless" or row.is_downloadable
        ]  # fmt: skip
        found = [r for r in choices if r.quality == quality and fmt in (None, r.format)]
        if not found:
            there = ", ".join(f"{r.quality}/{r.format}" for r in choices) or "none"
            wanted = f"{quality}/{fmt}" if fmt else quality
            raise NotFound(f"This track has no {wanted} rendition; it has: {there}.")
        picked = max(found, key=lambda r: r.bitrate_kbps or 0)
        etag = f'"{track_id.hex[:16]}-{picked.quality}-{picked.format}-{picked.size_bytes}"'
        suffix = PurePosixPath(picked.file_key).suffix
        return Progressive(
            picked.file_key, picked.size_bytes, etag, _FILE_TYPES.get(suffix, "audio/mpeg"),
            row.visibility == "private",
        )  # fmt: skip

    async def read(self, key: str, start: int, end: int) -> AsyncGenerator[bytes, None]:
        try:
            return await self._store.get_range(key, start, end)
        except ObjectNotFound:
            raise NotFound("Not found") from None

    async def played(self, principal: Principal | None, track_id: uuid.UUID, address: str) -> None:
        """Count a play, once per listener (user, else client address) per track per day."""
        who = str(principal.user_id) if principal is not None else f"ip:{address}"
        listener = hashlib.sha256(who.encode()).hexdigest()[:32]
        day = self._clock().date()
        seen = (track_id, listener, day.isoformat())
        if seen in self._played:
            return
        try:
            await queries.count_play(self._pool, track_id, day, listener)
        except (asyncpg.PostgresError, OSError):
            # A play not counted is better than a listener turned away.
            log.exception("could not count a play", extra={"track": track_id})
            return
        self._played[seen] = None
        if len(self._played) > _REMEMBERED_PLAYS:
            self._played.popitem(last=False)

    async def _playable(self, principal: Principal | None, track_id: uuid.UUID) -> TrackRow:
        row = self._ready_rows.get(track_id) or await self._ready_rows.load(
            track_id,
            lambda: queries.by_id(self._pool, track_id),
            lambda r: r.status == "ready" and not r.gone,
        )
        row = _visible(principal, row)
        if row.status == "processing":
            raise Conflict(
                "Track is still processing; retry in a few seconds",
                headers={"Retry-After": RETRY_AFTER},
            )
        if row.status != "ready":
            raise Conflict(f"Track could not be processed: {row.error_message}")
        return row

    async def _readable(self, principal: Principal | None, track_id: uuid.UUID) -> TrackRow:
        return _visible(principal, await queries.by_id(self._pool, track_id))

    async def _editable(self, principal: Principal, track_id: uuid.UUID) -> TrackRow:
        row = await self._readable(principal, track_id)
        if not _is_owner(principal, row):
            raise Forbidden("Only the track's owner can change or delete it")
        return row


_FILE_TYPES = {
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".aac": "audio/aac",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".aiff": "audio/aiff",
    ".ogg": "audio/ogg",
}


def _visible(principal: Principal | None, row: TrackRow | None) -> TrackRow:
    if row is None or row.gone:
        raise track_not_found()
    if row.visibility == "private" and not _is_owner(principal, row):
        raise track_not_found()  # another user's private track does not exist for them
    return row


def _is_owner(principal: Principal | None, row: TrackRow) -> bool:
    return principal is not None and (principal.is_admin or principal.owns(row.owner_id))


def _changes(fields: TrackFields) -> dict[str, Any]:
    sent = fields.model_dump(exclude_unset=True)
    changes = {k: v for k, v in sent.items() if k in queries.EDITABLE and k != "key"}
    if "key" in sent:
        changes["musical_key"] = sent["key"]
    visibility = fields.chosen_visibility()
    if visibility is not None:
        changes["visibility"] = visibility
    for required in ("title", "artist", "description", "tags", "is_downloadable", "license"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"Field '{required}' cannot be null.")
    return changes


def _catalog_values(received: Received, now: Any) -> dict[str, Any]:
    """The track's row: the metadata part, else the file's tags, else the defaults."""
    fields = received.metadata
    tags, info = received.audio.tags, received.audio.info
    stem = PurePosixPath(received.audio.filename or "").stem.strip()
    title = fields.title or tags.title or stem[:200] or "Untitled"
    artist = fields.artist or tags.artist
    if artist is None:
        raise InvalidInput("Field 'artist' is required: the file has no artist tag.")
    return {
        "title": title, "artist": artist, "album": fields.album or tags.album,
        "description": fields.description or "", "tags": fields.tags or [],
        "genre": fields.genre or tags.genre, "year": fields.year or tags.year,
        "bpm": fields.bpm or tags.bpm, "musical_key": fields.key or tags.key,
        "visibility": fields.chosen_visibility() or "public",
        "is_downloadable": bool(fields.is_downloadable),
        "license": fields.license or "All Rights Reserved",
        "source_format": info.format, "source_codec": info.codec,
        "sample_rate": info.sample_rate, "channels": info.channels,
        "source_bitrate_kbps": info.bitrate_kbps, "lossless": info.lossless,
        "duration_seconds": info.duration_seconds, "created_at": now, "updated_at": now,
    }  # fmt: skip


#: The node's tracks service.
TRACKS = web.AppKey("tracks_service", TracksService)
