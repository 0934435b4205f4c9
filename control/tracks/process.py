"""The `track.process` job: a track's stored source → its quality ladder, master playlist,
waveform and artwork in the store, its renditions in the database, then `ready`.

The source is fetched to a temporary directory, `hls.ladder.build_ladder` runs in a worker
thread, and every file it wrote is put under the track's folder. Idempotent: a retried or
resumed run writes the same keys again and replaces the renditions. Audio that cannot be
decoded fails at once with the reason in `error_message`; anything else (the store or the
database unavailable) is retried by the job queue. The uploaded artwork wins over the
cover embedded in the file.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import asyncpg

from control.tracks import queries
from control.tracks.ingest import ARTWORK_UPLOAD, SOURCE_NAME
from control.tracks.queries import RenditionRow
from control.tracks.tags import read_tags
from control.uploads import queries as upload_queries
from control.uploads.service import upload_folder
from hls.ladder import (
    INDEX_NAME,
    CorruptAudio,
    LadderResult,
    NotAudio,
    Rendition,
    build_ladder,
    probe_audio,
)
from hls.vod import MANIFEST_NAME
from mediaserver.clock import Clock, utcnow
from mediaserver.jobs import Job, PermanentJobError
from mediaserver.storage import ObjectNotFound, ObjectStore

PROCESS = "track.process"
ERROR_PREFIX = "Processing error:"
GAVE_UP = f"{ERROR_PREFIX} the file could not be processed; please upload it again."
READ_SIZE = 1 << 20
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "audio/mp4",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".aiff": "audio/aiff",
}


@dataclass(frozen=True, slots=True)
class _Built:
    result: LadderResult
    out: Path


class TrackProcessor:
    """Runs `track.process` jobs."""

    def __init__(
        self, pool: asyncpg.Pool, store: ObjectStore, segment_seconds: int, clock: Clock = utcnow
    ) -> None:
        self._pool = pool
        self._store = store
        self._segment_seconds = segment_seconds
        self._clock = clock

    async def run(self, job: Job) -> None:
        """Build the ladder, publish it, mark the track ready."""
        row = await queries.by_id(self._pool, job.subject_id)
        if row is None or row.gone or row.status != "processing":
            return  # deleted, or finished by an earlier run
        folder = upload_folder(row.owner_id, row.track_id)
        tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="track-"))
        try:
            built = await self._build(folder, tmp)
            rows = await self._publish(folder, built)
            await self._finish(row.track_id, folder, built.result, rows)
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)

    async def _build(self, folder: str, tmp: Path) -> _Built:
        source = tmp / SOURCE_NAME
        await self._fetch(folder + SOURCE_NAME, source)
        try:
            cover: bytes | None = await self._store.read(folder + ARTWORK_UPLOAD)
        except ObjectNotFound:
            cover = None
        out = tmp / "out"
        try:
            result = await asyncio.to_thread(_ladder, source, out, cover, self._segment_seconds)
        except (NotAudio, CorruptAudio) as exc:
            raise PermanentJobError(f"{ERROR_PREFIX} {exc.message}") from exc
        return _Built(result, out)

    async def _fetch(self, key: str, target: Path) -> None:
        chunks = await self._store.get(key)
        handle = await asyncio.to_thread(target.open, "wb")
        try:
            async for chunk in chunks:
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)

    async def _publish(self, folder: str, built: _Built) -> list[RenditionRow]:
        """Every file the ladder wrote, under `folder` (the master playlist last: its
        presence means the rest is there); the renditions' rows."""
        files = await asyncio.to_thread(_files, built.out)
        master = built.result.master_name
        for relative in sorted(files, key=lambda name: name == master):
            await self._put_file(folder + relative, built.out / relative)
        mp3 = _playlist_rendition(built.result)
        if mp3 is not None and mp3.hls_dir is not None:
            # Playlists play a track as any upload: `manifest.m3u8` beside its segments.
            index = await asyncio.to_thread((built.out / mp3.hls_dir / INDEX_NAME).read_bytes)
            await self._store.put_bytes(f"{folder}{mp3.hls_dir}/{MANIFEST_NAME}", index)
        return [
            RenditionRow(
                r.quality, r.format, r.codec, r.bitrate_kbps,
                f"{folder}{r.hls_dir}" if r.hls_dir else None,
                folder + r.file_name, r.size_bytes,
            )
            for r in built.result.renditions
        ]  # fmt: skip

    async def _put_file(self, key: str, path: Path) -> None:
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        size = (await asyncio.to_thread(path.stat)).st_size
        if size <= 4 * READ_SIZE:
            await self._store.put_bytes(key, await asyncio.to_thread(path.read_bytes), content_type)
            return
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            await self._store.put(key, _chunks(handle), content_type)
        finally:
            await asyncio.to_thread(handle.close)

    async def _finish(
        self, track_id: uuid.UUID, folder: str, result: LadderResult, rows: list[RenditionRow]
    ) -> None:
        mp3 = _playlist_rendition(result)
        source_key = folder + (mp3.file_name if mp3 else SOURCE_NAME)
        hls_prefix = f"{folder}{mp3.hls_dir}" if mp3 and mp3.hls_dir else f"{folder}hls"
        artwork = folder + result.artwork_name if result.artwork_name else None
        track = (
            result.duration_seconds,
            result.loudness_lufs,
            artwork,
            folder + result.waveform_name,
            folder + result.master_name,
        )
        upload = (
            source_key,
            hls_prefix,
            result.duration_seconds,
            mp3.bitrate_kbps if mp3 else None,
            self._clock(),
        )
        async with self._pool.acquire() as conn, conn.transaction():
            await queries.replace_renditions(conn, track_id, rows)
            ready = await queries.mark_ready(conn, track_id, track, upload)
        if not ready:
            await self._store.delete_prefix(folder)  # deleted while we worked

    async def failed(self, job: Job, error: str) -> None:
        """The job's `on_failed` hook: the track is `failed` with a message for its owner."""
        message = error if error.startswith(ERROR_PREFIX) else GAVE_UP
        await upload_queries.mark_failed(self._pool, job.subject_id, message, self._clock())


def _ladder(source: Path, out: Path, cover: bytes | None, seconds: int) -> LadderResult:
    info = probe_audio(source)
    if cover is None:
        cover = read_tags(source).cover
    return build_ladder(source, out, info=info, cover=cover, segment_seconds=seconds)


def _playlist_rendition(result: LadderResult) -> Rendition | None:
    """The MP3 rendition with HLS that playlists play (the highest bitrate under 320)."""
    mp3s = [r for r in result.renditions if r.format == "mp3" and r.hls_dir]
    return min(mp3s, key=lambda r: abs((r.bitrate_kbps or 0) - 128)) if mp3s else None


def _files(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]


async def _chunks(handle: BinaryIO) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(handle.read, READ_SIZE):
        yield chunk
