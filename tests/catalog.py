"""Catalog rows written straight into PostgreSQL (users, uploads, tracks), so that the
catalog tests build the exact catalog they check, without the upload pipeline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

BASE_TIME = datetime(2026, 1, 1, 12, tzinfo=UTC)

INSERT_UPLOAD = """
INSERT INTO uploads (upload_id, owner_id, filename, title, artist, content_type, size_bytes,
                     duration_seconds, status, source_key, hls_prefix, created_at, deleted_at)
VALUES ($1, $2, 'track.mp3', $3, $4, 'audio/mpeg', 1000, $5, $6,
        'uploads/' || $1::uuid::text || '/source.mp3',
        'uploads/' || $1::uuid::text || '/hls', $7, $8)
"""
INSERT_TRACK = """
INSERT INTO tracks (track_id, owner_id, title, artist, album, description, tags, genre, bpm,
                    musical_key, visibility, duration_seconds, artwork_key, waveform_key,
                    hls_master_key, plays, created_at, deleted_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'w', 'm', $14, $15, $16)
"""


@dataclass
class Track:
    """One track to insert; `status` is its upload's, `deleted` both rows'."""

    title: str
    artist: str = "Various"
    genre: str | None = None
    tags: list[str] = field(default_factory=list)
    bpm: int | None = None
    key: str | None = None
    duration: float = 200.0
    description: str = ""
    album: str | None = None
    visibility: str = "public"
    status: str = "ready"
    deleted: bool = False
    plays: int = 0
    artwork: bool = False
    owner_id: uuid.UUID | None = None
    track_id: uuid.UUID = field(default_factory=uuid.uuid4)


async def insert_user(conn: asyncpg.Connection, name: str = "DJ") -> uuid.UUID:
    user_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO users (user_id, email, name, password_hash, role) "
        "VALUES ($1, $2, $3, 'x', 'dj')",
        user_id,
        f"{user_id.hex[:12]}@example.com",
        name,
    )
    return user_id


async def insert_tracks(
    conn: asyncpg.Connection, owner_id: uuid.UUID, tracks: list[Track]
) -> list[Track]:
    """Inserts `tracks` (owned by `owner_id` unless they say), one minute apart in order."""
    for index, track in enumerate(tracks):
        owner = track.owner_id = track.owner_id or owner_id
        created = BASE_TIME + timedelta(minutes=index)
        deleted = created if track.deleted else None
        args: list[Any] = [track.track_id, owner, track.title, track.artist, track.duration]
        await conn.execute(INSERT_UPLOAD, *args, track.status, created, None)
        await conn.execute(
            INSERT_TRACK,
            track.track_id,
            owner,
            track.title,
            track.artist,
            track.album,
            track.description,
            track.tags,
            track.genre,
            track.bpm,
            track.key,
            track.visibility,
            track.duration,
            "artwork.jpg" if track.artwork else None,
            track.plays,
            created,
            deleted,
        )
    return tracks
