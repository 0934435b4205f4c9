"""Uploaded audio: streamed into the object store, checked by parsing, turned into VOD HLS by
a `transcode` job, listed, served to its owner and deleted (backlog US-3.1, US-3.2, US-9.1).

Object keys follow the backlog's layout and are built from server-generated ids only
(the owner's user id and the upload id): `uploads/audio/<user>/<upload>/original.mp3` and
`uploads/audio/<user>/<upload>/hls/{manifest.m3u8,segment000.ts,…}`; the rows store them
(`source_key`, `hls_prefix`). The playlists and podcasts services use `get_ready`,
`open_source`, `open_hls` and `manifest`, register a usage check so an upload they use is
not deleted by accident, and an after-delete hook to let go of one deleted with `force`.
"""

from __future__ import annotations

import logging
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import asyncpg
from aiohttp import web

from control.accounts import AccountGate
from control.api import parse_model
from control.mediacache import Body, ObjectCache, TtlCache
from control.schemas import PageQuery
from control.security import Principal
from control.tracks.quotas import Ceiling, quota_of
from control.uploads import queries
from control.uploads.form import FileField, FormField
from control.uploads.queries import NewUpload, UploadRow
from control.uploads.schemas import NO_UPLOADS, UploadFields, UploadList, UploadOut
from control.uploads.sniff import UploadSniffer
from control.uploads.transcode import TRANSCODE, Transcoder
from hls.vod import MANIFEST_NAME, UNSUPPORTED, NotMp3
from mediaserver.clock import Clock, utcnow
from mediaserver.config import Settings
from mediaserver.errors import Conflict, InvalidInput, NotFound, Unprocessable
from mediaserver.jobs import JobQueue
from mediaserver.storage import ObjectNotFound, ObjectStore, StoreError

log = logging.getLogger(__name__)

MP3_TYPE = "audio/mpeg"
IN_USE = "This upload is used by a playlist or episode; pass ?force=true to delete it anyway."
TITLE_LIMIT = 200
RETRY_AFTER = "5"
_KEYS_CACHED = 4096  # uploads whose keys `open_hls` & co. remember (they never change)

#: Registered by other domains: a description of what uses the upload ("playlist 'Mix'"),
#: or None.
UsageCheck = Callable[[uuid.UUID], Awaitable[str | None]]
#: Registered by other domains: called with the id of an upload just deleted (by then
#: unknown to `get_ready`, its objects being removed), to let go of it. Idempotent.
AfterDelete = Callable[[uuid.UUID], Awaitable[None]]


def upload_folder(owner_id: uuid.UUID, upload_id: uuid.UUID) -> str:
    """The prefix of every object of one upload (removed together when it is deleted)."""
    return f"uploads/audio/{owner_id}/{upload_id}/"


def source_key(owner_id: uuid.UUID, upload_id: uuid.UUID) -> str:
    return f"{upload_folder(owner_id, upload_id)}original.mp3"


def hls_prefix(owner_id: uuid.UUID, upload_id: uuid.UUID) -> str:
    return f"{upload_folder(owner_id, upload_id)}hls"


def upload_not_found() -> NotFound:
    return NotFound("Upload not found")


@dataclass(frozen=True, slots=True)
class _Received:
    filename: str
    size: int
    id3_title: str | None
    id3_artist: str | None


class UploadsService:
    """Uploads in PostgreSQL and the object store; registers the `transcode` job kind."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: ObjectStore,
        jobs: JobQueue,
        settings: Settings,
        clock: Clock = utcnow,
        accounts: AccountGate | None = None,
    ) -> None:
        self._pool = pool
        self._accounts = accounts
        self._store = store
        self._jobs = jobs
        self._clock = clock
        self._ceiling = Ceiling.of_uploads(settings)
        self._usage_checks: list[UsageCheck] = []
        self._after_delete: list[AfterDelete] = []
        self._keys: OrderedDict[uuid.UUID, tuple[str, str]] = OrderedDict()
        #: The HLS objects of ready uploads (and of playlists' external tracks) in memory.
        self.objects = ObjectCache(store, settings.media_cache_bytes)
        self._ready_rows: TtlCache[uuid.UUID, UploadRow] = TtlCache()
        self.transcoder = Transcoder(pool, store, settings.upload_hls_seconds, self._ceiling, clock)
        jobs.register(TRANSCODE, self.transcoder.run, self.transcoder.failed)

    def register_usage_check(self, check: UsageCheck) -> None:
        """`check(upload_id)` describes what uses the upload, or returns None; a DELETE
        without `force` is refused with 409 while any check describes a use."""
        self._usage_checks.append(check)

    def register_after_delete(self, hook: AfterDelete) -> None:
        """`hook(upload_id)` runs after every delete, once the upload is gone for
        `get_ready`: a playlist or episode still using it (`force`) lets go of it there."""
        self._after_delete.append(hook)

    async def upload(
        self,
        principal: Principal,
        form: Callable[[int], AsyncIterator[FormField]],
        origin: str,
    ) -> UploadOut:
        """Store the form's file (refused unless it parses as MP3), record the upload and
        queue its transcoding in one transaction. `form(max_file_bytes)` reads the body,
        only once the caller's upload plan is known to allow one more upload (429
        otherwise; `control.tracks.quotas`, as for tracks). The object is durable before
        this returns; on any failure nothing is left behind."""
        if self._accounts is not None:
            await self._accounts.check_verified(principal)
        quota = await quota_of(
            self._pool, self._ceiling, principal.user_id, principal.is_admin, self._clock()
        )
        quota.check()
        fields = form(quota.max_bytes)
        upload_id = uuid.uuid4()
        key = source_key(principal.user_id, upload_id)
        received: _Received | None = None
        text: dict[str, str] = {}
        try:
            async for field in fields:
                if isinstance(field, FileField):
                    if received is not None:
                        raise InvalidInput("Send one file per upload.")
                    received = await self._receive(key, field)
                elif field.name in UploadFields.model_fields:
                    if field.value.strip():  # browsers send empty inputs as ""
                        text[field.name] = field.value
                else:
                    raise InvalidInput(
                        f"Unexpected form field '{field.name}': send 'file', "
                        "and optionally 'title' and 'artist'."
                    )
            if received is None:
                raise InvalidInput("No file uploaded: send the MP3 in a form field named 'file'.")
            meta = parse_model(UploadFields, text, "body")
            row = await self._create(principal, upload_id, received, meta)
        except BaseException:
            if received is not None:
                await self._discard(key)
            raise
        return self._out(row, origin)

    async def _receive(self, key: str, field: FileField) -> _Received:
        sniffer = UploadSniffer()

        async def sniffed() -> AsyncIterator[bytes]:
            async for chunk in field.chunks:
                sniffer.feed(chunk)
                yield chunk
            sniffer.finish()

        try:
            info = await self._store.put(key, sniffed(), MP3_TYPE)
        except NotMp3 as exc:
            details = f"The file looks like {exc.detected}." if exc.detected else None
            raise InvalidInput(UNSUPPORTED, details=details) from None
        title, artist = sniffer.tags()
        return _Received(clean_filename(field.filename), info.size, title, artist)

    async def _create(
        self, principal: Principal, upload_id: uuid.UUID, received: _Received, meta: UploadFields
    ) -> UploadRow:
        title = meta.title or received.id3_title or PurePosixPath(received.filename).stem
        artist = meta.artist or received.id3_artist
        new = NewUpload(
            upload_id=upload_id,
            owner_id=principal.user_id,
            filename=received.filename,
            title=title[:TITLE_LIMIT] or "Untitled",
            artist=artist[:TITLE_LIMIT] if artist else None,
            content_type=MP3_TYPE,
            size_bytes=received.size,
            source_key=source_key(principal.user_id, upload_id),
            hls_prefix=hls_prefix(principal.user_id, upload_id),
            created_at=self._clock(),
        )
        async with self._pool.acquire() as conn, conn.transaction():
            # Again with the real size, the DJ's row locked: two uploads at once cannot
            # both take the last of the plan.
            quota = await quota_of(
                conn, self._ceiling, principal.user_id, principal.is_admin, self._clock(),
                lock=True,
            )  # fmt: skip
            quota.check(received.size)
            row = await queries.insert(conn, new)
            await self._jobs.enqueue(conn, TRANSCODE, upload_id)
        return row

    async def _discard(self, key: str) -> None:
        try:
            await self._store.delete(key)
        except StoreError:
            log.exception("could not delete a refused upload", extra={"key": key})

    async def detail(self, principal: Principal, upload_id: uuid.UUID, origin: str) -> UploadOut:
        """An upload of the caller's (any upload for an admin); 404 otherwise."""
        return self._out(await self._visible(principal, upload_id), origin)

    async def list_mine(self, principal: Principal, query: PageQuery, origin: str) -> UploadList:
        """The caller's uploads, newest first, with US-9.1's message when there are none."""
        rows, total = await queries.owned(
            self._pool, principal.user_id, query.per_page, query.offset
        )
        return UploadList(
            uploads=[self._out(row, origin) for row in rows],
            page=query.page,
            per_page=query.per_page,
            total=total,
            message=NO_UPLOADS if total == 0 else None,
        )

    async def delete(self, principal: Principal, upload_id: uuid.UUID, force: bool) -> None:
        """Soft-delete the upload, let its users go (after-delete hooks: playlists mark its
        tracks failed, episodes using it leave their feeds) and remove its objects; 409
        while a playlist or episode uses it, unless `force`."""
        row = await self._visible(principal, upload_id)
        if not force:
            uses = [use for check in self._usage_checks if (use := await check(upload_id))]
            if uses:
                raise Conflict(IN_USE, details=uses)
        if not await queries.soft_delete(self._pool, upload_id, self._clock()):
            raise upload_not_found()
        self._keys.pop(upload_id, None)
        self._ready_rows.pop(upload_id)  # this node's players are refused at once
        self.objects.purge_prefix(upload_folder(row.owner_id, upload_id))
        failure: BaseException | None = None
        for hook in self._after_delete:
            try:
                await hook(upload_id)
            except Exception as exc:  # the others still run, and the objects still go
                log.exception("an upload's after-delete hook failed", extra={"upload": upload_id})
                failure = failure or exc
        try:
            await self._store.delete_prefix(upload_folder(row.owner_id, upload_id))
        except StoreError:
            # The row is gone for every reader; the objects are only storage to reclaim.
            log.exception("could not delete an upload's objects", extra={"upload": upload_id})
        if failure is not None:
            raise failure

    async def media(self, principal: Principal, upload_id: uuid.UUID, name: str) -> Body:
        """The owner's (or an admin's) view of a ready upload's HLS: 409 while it is
        processing (with `Retry-After`) or when it failed (with the reason).
        In the steady state from memory: the ready row for `ACCESS_TTL` (a delete on this
        node takes effect at once, on another within that), the bytes (which never change
        once the upload is ready) from `objects`."""
        row = self._ready_rows.get(upload_id) or await self._media_row(upload_id)
        if row is None or row.deleted_at is not None:
            raise upload_not_found()
        if not (principal.is_admin or principal.owns(row.owner_id)):
            raise upload_not_found()  # another user's upload does not exist for this caller
        if row.status == "processing":
            raise Conflict(
                "Upload is still processing; retry in a few seconds",
                headers={"Retry-After": RETRY_AFTER},
            )
        if row.status != "ready":
            raise Conflict(f"Upload could not be processed: {row.error_message}")
        return self.objects.cached(f"{row.hls_prefix}/{name}") or await self._hls_object(row, name)

    def media_now(self, principal: Principal, upload_id: uuid.UUID, name: str) -> Body | None:
        """`media` when memory answers it for the upload's owner or an admin (the steady
        state), else None: await `media`, which decides."""
        row = self._ready_rows.get(upload_id)  # ready rows only (`_media_row`)
        if row is None or not (principal.is_admin or principal.user_id == row.owner_id):
            return None
        return self.objects.cached(f"{row.hls_prefix}/{name}")

    def playable_now(self, upload_id: uuid.UUID, name: str) -> Body | None:
        """`playable_hls` when memory answers it (the steady state), else None: await it."""
        row = self._ready_rows.get(upload_id)  # ready rows only (`_media_row`)
        if row is None:
            return None
        return self.objects.cached(f"{row.hls_prefix}/{name}")

    async def playable_hls(self, upload_id: uuid.UUID, name: str) -> Body:
        """`manifest.m3u8` or a segment of a ready upload, for a playlist that plays it
        (the caller checked access): 404 once the upload is deleted, or without such an
        object. From memory in the steady state, like `media`."""
        row = await self._media_row(upload_id)
        if row is None or not row.ready:
            raise NotFound("Not found")
        return await self._hls_object(row, name)

    async def _media_row(self, upload_id: uuid.UUID) -> UploadRow | None:
        # Only ready rows are kept: readiness shows at once. `media` and `playable_now`
        # look in `_ready_rows` and `objects` first, without a coroutine: a steady stream
        # of GETs awaits none (`load` and `get` look there again before reading).
        return await self._ready_rows.load(
            upload_id, lambda: queries.by_id(self._pool, upload_id), lambda row: row.ready
        )

    async def _hls_object(self, row: UploadRow, name: str) -> Body:
        key = f"{row.hls_prefix}/{name}"
        try:
            return await self.objects.get(key)
        except (ObjectNotFound, ValueError):
            raise NotFound("Not found") from None

    async def get_ready(self, owner_id: uuid.UUID | None, upload_id: uuid.UUID) -> UploadRow:
        """The upload if it exists, is `owner_id`'s (None: anyone's) and is ready to play:
        404 when not, 422 "Upload … is not ready (status processing)" while it is not."""
        row = await queries.by_id(self._pool, upload_id)
        if row is None or row.deleted_at is not None:
            raise NotFound(f"Upload {upload_id} not found")
        if owner_id is not None and row.owner_id != owner_id:
            raise NotFound(f"Upload {upload_id} not found")
        if row.status != "ready":
            raise Unprocessable(f"Upload {upload_id} is not ready (status {row.status})")
        return row

    async def open_source(self, upload_id: uuid.UUID) -> AsyncGenerator[bytes, None]:
        """The uploaded MP3's bytes, streamed (`aclose()` it if not read to the end)."""
        source, _ = await self._keys_of(upload_id)
        return await self._open(source)

    async def open_hls(self, upload_id: uuid.UUID, name: str) -> AsyncGenerator[bytes, None]:
        """`manifest.m3u8` or one of its segments (`segment000.ts`…), streamed."""
        _, prefix = await self._keys_of(upload_id)
        return await self._open(f"{prefix}/{name}")

    async def manifest(self, upload_id: uuid.UUID) -> str:
        """The ready upload's VOD playlist (segment URIs relative to it)."""
        _, prefix = await self._keys_of(upload_id)
        try:
            data = await self._store.read(f"{prefix}/{MANIFEST_NAME}")
        except ObjectNotFound:
            raise NotFound(f"Upload {upload_id} has no HLS rendition") from None
        return data.decode()

    async def _keys_of(self, upload_id: uuid.UUID) -> tuple[str, str]:
        """(source key, HLS prefix) of a live upload, as its row stores them: 404 once it
        is deleted. Remembered (an upload's keys never change), so playlist segments cost
        no query; an upload deleted on another node then answers 404 from the store."""
        keys = self._keys.get(upload_id)
        if keys is not None:
            self._keys.move_to_end(upload_id)
            return keys
        row = await queries.by_id(self._pool, upload_id)
        if row is None or row.deleted_at is not None:
            raise NotFound("Not found")
        keys = self._keys[upload_id] = (row.source_key, row.hls_prefix)
        if len(self._keys) > _KEYS_CACHED:
            self._keys.popitem(last=False)
        return keys

    async def _open(self, key: str) -> AsyncGenerator[bytes, None]:
        try:
            return await self._store.get(key)
        except ObjectNotFound:
            raise NotFound("Not found") from None

    async def _visible(self, principal: Principal, upload_id: uuid.UUID) -> UploadRow:
        row = await queries.by_id(self._pool, upload_id)
        if row is None or row.deleted_at is not None:
            raise upload_not_found()
        if not (principal.is_admin or principal.owns(row.owner_id)):
            raise upload_not_found()  # another user's upload does not exist for this caller
        return row

    def _out(self, row: UploadRow, origin: str) -> UploadOut:
        # Always the URL: it answers 409 (with the reason) until the upload is ready.
        manifest_url = f"{origin}/v1/uploads/audio/{row.upload_id}/hls/{MANIFEST_NAME}"
        return UploadOut(
            upload_id=row.upload_id,
            status=row.status,
            title=row.title,
            artist=row.artist,
            filename=row.filename,
            size_bytes=row.size_bytes,
            duration_seconds=row.duration_seconds,
            bitrate_kbps=row.bitrate_kbps,
            storage_url=self._store.storage_url_for(row.source_key),
            hls_manifest_url=manifest_url,
            error_message=row.error_message,
            created_at=row.created_at,
            completed_at=row.completed_at,
        )


def clean_filename(name: str | None, default: str = "upload.mp3") -> str:
    """The client's file name without any directory part or control characters."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    cleaned = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return cleaned[:255] or default


#: The node's uploads service.
UPLOADS = web.AppKey("uploads_service", UploadsService)
