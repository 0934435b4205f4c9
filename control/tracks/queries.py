"""SQL of the track catalog: a track is an `uploads` row (status, keys, job) plus its
`tracks` row (metadata), `track_renditions`, `track_plays_daily` and `track_listeners`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import asyncpg

from mediaserver.db import Executor


@dataclass(frozen=True, slots=True)
class TrackRow:
    """A track with its upload's status, file name and object-store folder."""

    track_id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    artist: str
    album: str | None
    description: str
    tags: list[str]
    genre: str | None
    year: int | None
    bpm: int | None
    musical_key: str | None
    visibility: str
    is_downloadable: bool
    license: str
    source_format: str | None
    source_codec: str | None
    sample_rate: int | None
    channels: int | None
    source_bitrate_kbps: int | None
    lossless: bool | None
    duration_seconds: float | None
    loudness_lufs: float | None
    artwork_key: str | None
    waveform_key: str | None
    hls_master_key: str | None
    plays: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    status: str
    error_message: str | None
    filename: str
    upload_deleted_at: datetime | None

    @property
    def gone(self) -> bool:
        return self.deleted_at is not None or self.upload_deleted_at is not None


@dataclass(frozen=True, slots=True)
class RenditionRow:
    quality: str
    format: str
    codec: str
    bitrate_kbps: int | None
    hls_prefix: str | None
    file_key: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class NewTrack:
    """The catalog row written with the upload (the probe's findings included)."""

    track_id: uuid.UUID
    owner_id: uuid.UUID
    values: dict[str, Any]


BY_ID = """
SELECT t.track_id, t.owner_id, t.title, t.artist, t.album, t.description, t.tags, t.genre,
       t.year, t.bpm, t.musical_key, t.visibility, t.is_downloadable, t.license,
       t.source_format, t.source_codec, t.sample_rate, t.channels, t.source_bitrate_kbps,
       t.lossless, t.duration_seconds, t.loudness_lufs, t.artwork_key, t.waveform_key,
       t.hls_master_key, t.plays, t.created_at, t.updated_at, t.deleted_at,
       u.status, u.error_message, u.filename, u.deleted_at AS upload_deleted_at
FROM tracks t JOIN uploads u ON u.upload_id = t.track_id
WHERE t.track_id = $1
"""
INSERT_COLUMNS = (
    "title", "artist", "album", "description", "tags", "genre", "year", "bpm", "musical_key",
    "visibility", "is_downloadable", "license", "source_format", "source_codec", "sample_rate",
    "channels", "source_bitrate_kbps", "lossless", "duration_seconds", "created_at",
    "updated_at",
)  # fmt: skip
INSERT = """
INSERT INTO tracks (track_id, owner_id, title, artist, album, description, tags, genre, year,
                    bpm, musical_key, visibility, is_downloadable, license, source_format,
                    source_codec, sample_rate, channels, source_bitrate_kbps, lossless,
                    duration_seconds, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
        $20, $21, $22, $23)
"""
#: The metadata a PATCH may change (column names, never user input, go in the SQL).
EDITABLE = (
    "title", "artist", "album", "description", "tags", "genre", "year", "bpm", "musical_key",
    "visibility", "is_downloadable", "license",
)  # fmt: skip
# The upload's title and artist follow the track's: playlists show them for its entries.
SYNC_UPLOAD = """
UPDATE uploads SET title = coalesce($2, title), artist = coalesce($3, artist)
WHERE upload_id = $1
"""
RENDITIONS = """
SELECT quality, format, codec, bitrate_kbps, hls_prefix, file_key, size_bytes
FROM track_renditions WHERE track_id = $1
ORDER BY CASE quality WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2 ELSE 3 END,
         bitrate_kbps NULLS LAST, format
"""
CLEAR_RENDITIONS = "DELETE FROM track_renditions WHERE track_id = $1"
INSERT_RENDITION = """
INSERT INTO track_renditions (track_id, quality, format, codec, bitrate_kbps, hls_prefix,
                              file_key, size_bytes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""
MARK_TRACK_READY = """
UPDATE tracks SET duration_seconds = $2, loudness_lufs = $3, artwork_key = $4,
       waveform_key = $5, hls_master_key = $6
WHERE track_id = $1 AND deleted_at IS NULL
"""
# The upload's source and HLS become the MP3 rendition's: playlists play a track as they
# play any upload (MP3 frames, `manifest.m3u8` + `segmentNNN.ts`).
MARK_UPLOAD_READY = """
UPDATE uploads SET status = 'ready', source_key = $2, hls_prefix = $3, duration_seconds = $4,
       bitrate_kbps = $5, error_message = NULL, completed_at = $6
WHERE upload_id = $1 AND status = 'processing' AND deleted_at IS NULL
"""
SOFT_DELETE = """
UPDATE tracks SET deleted_at = $2 WHERE track_id = $1 AND deleted_at IS NULL
"""
OWNER_DELETED = """
UPDATE tracks SET deleted_at = $2 WHERE owner_id = $1 AND deleted_at IS NULL
RETURNING track_id
"""
STATS = """
SELECT day, plays, unique_listeners FROM track_plays_daily
WHERE track_id = $1 ORDER BY day DESC LIMIT $2
"""
UNIQUE_LISTENERS = "SELECT count(DISTINCT listener) FROM track_listeners WHERE track_id = $1"
RELATED = """
SELECT t.track_id, t.title, t.artist, t.genre, t.duration_seconds, t.artwork_key
FROM tracks t JOIN uploads u ON u.upload_id = t.track_id
WHERE t.track_id <> $1 AND t.deleted_at IS NULL AND t.visibility = 'public'
  AND u.status = 'ready' AND u.deleted_at IS NULL
  AND (lower(t.artist) = lower($2) OR lower(t.genre) = lower($3))
ORDER BY (lower(t.artist) = lower($2)) DESC, t.plays DESC, t.created_at DESC
LIMIT $4
"""
LISTENED = """
INSERT INTO track_listeners (track_id, day, listener) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
"""
COUNT_DAY = """
INSERT INTO track_plays_daily (track_id, day, plays, unique_listeners) VALUES ($1, $2, 1, 1)
ON CONFLICT (track_id, day) DO UPDATE
SET plays = track_plays_daily.plays + 1,
    unique_listeners = track_plays_daily.unique_listeners + 1
"""
COUNT_TRACK = "UPDATE tracks SET plays = plays + 1 WHERE track_id = $1"

_NAMES = tuple(f.name for f in fields(TrackRow))


def _row(record: asyncpg.Record | None) -> TrackRow | None:
    if record is None:
        return None
    return TrackRow(*(record[name] for name in _NAMES))


async def by_id(conn: Executor, track_id: uuid.UUID) -> TrackRow | None:
    """The track, deleted or not."""
    return _row(await conn.fetchrow(BY_ID, track_id))


async def insert(conn: Executor, new: NewTrack) -> None:
    await conn.execute(
        INSERT, new.track_id, new.owner_id, *(new.values.get(c) for c in INSERT_COLUMNS)
    )


async def update(
    conn: Executor, track_id: uuid.UUID, changes: dict[str, Any], now: datetime
) -> None:
    """Set the `EDITABLE` columns in `changes` (names checked against `EDITABLE`)."""
    names = [name for name in EDITABLE if name in changes]
    if not names:
        return
    sets = ", ".join(f"{name} = ${n}" for n, name in enumerate(names, start=3))
    sql = f"UPDATE tracks SET updated_at = $2, {sets} WHERE track_id = $1"  # noqa: S608
    await conn.execute(sql, track_id, now, *(changes[name] for name in names))
    if "title" in changes or "artist" in changes:
        await conn.execute(SYNC_UPLOAD, track_id, changes.get("title"), changes.get("artist"))


async def renditions(conn: Executor, track_id: uuid.UUID) -> list[RenditionRow]:
    return [RenditionRow(*r) for r in await conn.fetch(RENDITIONS, track_id)]


async def replace_renditions(
    conn: Executor, track_id: uuid.UUID, rows: Sequence[RenditionRow]
) -> None:
    await conn.execute(CLEAR_RENDITIONS, track_id)
    await conn.executemany(
        INSERT_RENDITION,
        [
            (track_id, r.quality, r.format, r.codec, r.bitrate_kbps, r.hls_prefix, r.file_key,
             r.size_bytes)
            for r in rows
        ],
    )  # fmt: skip


async def mark_ready(
    conn: Executor,
    track_id: uuid.UUID,
    track: tuple[float, float | None, str | None, str, str],
    upload: tuple[str, str, float, int | None, datetime],
) -> bool:
    """False when the track was deleted (or finished) meanwhile."""
    status = await conn.execute(MARK_UPLOAD_READY, track_id, *upload)
    if str(status) != "UPDATE 1":
        return False
    await conn.execute(MARK_TRACK_READY, track_id, *track)
    return True


async def soft_delete(conn: Executor, track_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(SOFT_DELETE, track_id, now)


async def soft_delete_owned(conn: Executor, owner_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
    return [r["track_id"] for r in await conn.fetch(OWNER_DELETED, owner_id, now)]


async def stats(
    conn: Executor, track_id: uuid.UUID, days: int
) -> tuple[list[tuple[date, int, int]], int]:
    """Plays per day (newest first, at most `days`) and unique listeners overall."""
    rows = await conn.fetch(STATS, track_id, days)
    unique = int(await conn.fetchval(UNIQUE_LISTENERS, track_id))
    return [(r["day"], r["plays"], r["unique_listeners"]) for r in rows], unique


async def related(
    conn: Executor, track_id: uuid.UUID, artist: str, genre: str | None, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(RELATED, track_id, artist, genre, limit))


async def count_play(conn: asyncpg.Pool, track_id: uuid.UUID, day: date, listener: str) -> bool:
    """Count one play unless `listener` already played the track on `day`."""
    async with conn.acquire() as c, c.transaction():
        if str(await c.execute(LISTENED, track_id, day, listener)) != "INSERT 0 1":
            return False
        await c.execute(COUNT_DAY, track_id, day)
        await c.execute(COUNT_TRACK, track_id)
    return True
