"""SQL of playlists and their tracks."""

from __future__ import annotations

import uuid
from dataclasses import astuple, dataclass, fields
from datetime import datetime

import asyncpg

from control.playlists.schemas import SourceType, TrackStatus, Visibility
from mediaserver.db import Connection, Executor


@dataclass(frozen=True, slots=True)
class PlaylistRow:
    playlist_id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str
    visibility: Visibility
    monetization_enabled: bool
    hls_ready: bool
    manifest_key: str | None
    created_at: datetime
    updated_at: datetime
    track_count: int


@dataclass(frozen=True, slots=True)
class TrackRow:
    """One track. `external_key` is the fetched copy of an external track (its HLS
    rendition is under the same folder); upload tracks play the upload's objects."""

    playlist_id: uuid.UUID
    position: int
    track_id: uuid.UUID
    source_type: SourceType
    upload_id: uuid.UUID | None
    external_url: str | None
    external_key: str | None
    title: str
    artist: str | None
    status: TrackStatus
    duration_seconds: float | None
    error_message: str | None


_PLAYLIST = """
SELECT p.playlist_id, p.owner_id, p.title, p.description, p.visibility,
       p.monetization_enabled, p.hls_ready, p.manifest_key, p.created_at, p.updated_at,
       (SELECT count(*) FROM playlist_tracks t WHERE t.playlist_id = p.playlist_id)
           AS track_count
FROM playlists p
"""
BY_ID = _PLAYLIST + "WHERE p.playlist_id = $1 AND p.deleted_at IS NULL"
# Serialises the writers of one playlist: edits, track completions, manifest generation.
LOCK = BY_ID + " FOR UPDATE OF p"
OWNED = """
SELECT p.playlist_id, p.owner_id, p.title, p.description, p.visibility,
       p.monetization_enabled, p.hls_ready, p.manifest_key, p.created_at, p.updated_at,
       (SELECT count(*) FROM playlist_tracks t WHERE t.playlist_id = p.playlist_id)
           AS track_count,
       count(*) OVER () AS total
FROM playlists p WHERE p.owner_id = $1 AND p.deleted_at IS NULL
ORDER BY p.created_at DESC, p.playlist_id DESC LIMIT $2 OFFSET $3
"""
OWNED_COUNT = "SELECT count(*) FROM playlists WHERE owner_id = $1 AND deleted_at IS NULL"
OWNER = "SELECT owner_id FROM playlists WHERE playlist_id = $1 AND deleted_at IS NULL"
INSERT = """
INSERT INTO playlists (playlist_id, owner_id, title, description, visibility,
                       monetization_enabled, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
"""
UPDATE = """
UPDATE playlists SET title = $2, description = $3, visibility = $4,
       monetization_enabled = $5, updated_at = $6
WHERE playlist_id = $1 AND deleted_at IS NULL
"""
SET_HLS = "UPDATE playlists SET hls_ready = $2, manifest_key = $3 WHERE playlist_id = $1"
SOFT_DELETE = """
UPDATE playlists SET deleted_at = $2, hls_ready = false
WHERE playlist_id = $1 AND deleted_at IS NULL
"""
TRACKS = """
SELECT playlist_id, position, track_id, source_type, upload_id, external_url,
       external_key, title, artist, status, duration_seconds, error_message
FROM playlist_tracks WHERE playlist_id = $1 ORDER BY position
"""
OWNED_IDS = "SELECT playlist_id FROM playlists WHERE owner_id = $1 AND deleted_at IS NULL"
DELETE_TRACKS = "DELETE FROM playlist_tracks WHERE playlist_id = $1"
INSERT_TRACK = """
INSERT INTO playlist_tracks (playlist_id, position, track_id, source_type, upload_id,
       external_url, external_key, title, artist, status, duration_seconds, error_message)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
"""
TRACK = """
SELECT t.playlist_id, t.position, t.track_id, t.source_type, t.upload_id, t.external_url,
       t.external_key, t.title, t.artist, t.status, t.duration_seconds, t.error_message
FROM playlist_tracks t JOIN playlists p USING (playlist_id)
WHERE t.track_id = $1 AND p.deleted_at IS NULL
"""
# $1 track; each returns the playlist id, or nothing once the track is gone or finished.
TRACK_READY = """
UPDATE playlist_tracks SET status = 'ready', duration_seconds = $2, error_message = NULL
WHERE track_id = $1 AND status = 'processing' RETURNING playlist_id
"""
TRACK_FAILED = """
UPDATE playlist_tracks SET status = 'failed', error_message = $2
WHERE track_id = $1 AND status = 'processing' RETURNING playlist_id
"""
USES = """
SELECT DISTINCT p.title FROM playlist_tracks t JOIN playlists p USING (playlist_id)
WHERE t.upload_id = $1 AND p.deleted_at IS NULL ORDER BY p.title LIMIT 10
"""
PLAYING = """
SELECT DISTINCT t.playlist_id FROM playlist_tracks t JOIN playlists p USING (playlist_id)
WHERE t.upload_id = $1 AND p.deleted_at IS NULL
"""
# $1 playlist, $2 upload, $3 message.
FAIL_UPLOAD_TRACKS = """
UPDATE playlist_tracks SET status = 'failed', error_message = $3
WHERE playlist_id = $1 AND upload_id = $2
"""


def _playlist(record: asyncpg.Record | None) -> PlaylistRow | None:
    if record is None:
        return None
    return PlaylistRow(*(record[f.name] for f in fields(PlaylistRow)))


def _track(record: asyncpg.Record) -> TrackRow:
    return TrackRow(*(record[f.name] for f in fields(TrackRow)))


async def by_id(
    conn: Executor, playlist_id: uuid.UUID, *, lock: bool = False
) -> PlaylistRow | None:
    """The live (not deleted) playlist; `lock` takes its row lock (in a transaction)."""
    return _playlist(await conn.fetchrow(LOCK if lock else BY_ID, playlist_id))


async def owned(
    conn: Executor, owner_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[PlaylistRow], int]:
    records = await conn.fetch(OWNED, owner_id, limit, offset)
    if not records:
        return [], int(await conn.fetchval(OWNED_COUNT, owner_id))
    rows = [r for r in map(_playlist, records) if r is not None]
    return rows, int(records[0]["total"])


async def owner_of(conn: Executor, playlist_id: uuid.UUID) -> uuid.UUID | None:
    owner: uuid.UUID | None = await conn.fetchval(OWNER, playlist_id)
    return owner


async def insert(
    conn: Executor,
    playlist_id: uuid.UUID,
    owner_id: uuid.UUID,
    meta: tuple[str, str, str, bool],
    now: datetime,
) -> None:
    """`meta` is (title, description, visibility, monetization_enabled)."""
    await conn.execute(INSERT, playlist_id, owner_id, *meta, now)


async def update(
    conn: Executor, playlist_id: uuid.UUID, meta: tuple[str, str, str, bool], now: datetime
) -> None:
    await conn.execute(UPDATE, playlist_id, *meta, now)


async def set_hls(conn: Executor, playlist_id: uuid.UUID, manifest_key: str | None) -> None:
    """Ready with the manifest at `manifest_key`, or (None) not ready."""
    await conn.execute(SET_HLS, playlist_id, manifest_key is not None, manifest_key)


async def owned_ids(conn: Executor, owner_id: uuid.UUID) -> list[uuid.UUID]:
    return [r["playlist_id"] for r in await conn.fetch(OWNED_IDS, owner_id)]


async def soft_delete(conn: Executor, playlist_id: uuid.UUID, now: datetime) -> bool:
    return str(await conn.execute(SOFT_DELETE, playlist_id, now)) == "UPDATE 1"


async def tracks(conn: Executor, playlist_id: uuid.UUID) -> list[TrackRow]:
    return [_track(r) for r in await conn.fetch(TRACKS, playlist_id)]


async def replace_tracks(conn: Connection, playlist_id: uuid.UUID, rows: list[TrackRow]) -> None:
    """Delete the playlist's tracks and insert `rows` (inside the caller's transaction)."""
    await conn.execute(DELETE_TRACKS, playlist_id)
    await conn.executemany(INSERT_TRACK, [astuple(row) for row in rows])


async def track(conn: Executor, track_id: uuid.UUID) -> TrackRow | None:
    """The track, while its playlist is live."""
    record = await conn.fetchrow(TRACK, track_id)
    return _track(record) if record is not None else None


async def finish_track(
    conn: Executor, track_id: uuid.UUID, duration: float | None, error: str | None
) -> bool:
    """`ready` with its measured duration, or `failed` with `error`; False when the track
    is gone (replaced or deleted) or no longer processing."""
    if error is None:
        found = await conn.fetchval(TRACK_READY, track_id, duration)
    else:
        found = await conn.fetchval(TRACK_FAILED, track_id, error)
    return found is not None


async def uses(conn: Executor, upload_id: uuid.UUID) -> list[str]:
    """Titles of live playlists that play the upload."""
    return [r["title"] for r in await conn.fetch(USES, upload_id)]


async def playing(conn: Executor, upload_id: uuid.UUID) -> list[uuid.UUID]:
    """Every live playlist with a track of the upload."""
    return [r["playlist_id"] for r in await conn.fetch(PLAYING, upload_id)]


async def fail_upload_tracks(
    conn: Executor, playlist_id: uuid.UUID, upload_id: uuid.UUID, message: str
) -> None:
    """The playlist's tracks of the upload are `failed` with `message`."""
    await conn.execute(FAIL_UPLOAD_TRACKS, playlist_id, upload_id, message)
