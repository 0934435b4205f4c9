"""SQL of live streams and their ad markers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime

import asyncpg

from control.streams.schemas import AdMarker, StreamIn, Visibility
from mediaserver.db import Executor
from relay.status import ServerKind, StreamSource


@dataclass(frozen=True, slots=True)
class StreamRow:
    stream_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    source_url: str
    mount: str
    server_kind: ServerKind
    sid: int | None
    stream_key_enc: bytes = field(repr=False)
    genre: str | None
    description: str | None
    visibility: Visibility
    monetization_enabled: bool
    enabled: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @property
    def live(self) -> bool:
        """Enabled and not deleted: a relay should run, listeners may connect."""
        return self.enabled and self.deleted_at is None

    def source(self) -> StreamSource:
        return StreamSource(
            stream_id=self.stream_id,
            source_url=self.source_url,
            mount=self.mount,
            server_kind=self.server_kind,
            sid=self.sid,
            name=self.name,
            genre=self.genre,
            description=self.description,
            listed=self.visibility == "public" and not self.monetization_enabled,
        )


@dataclass(frozen=True, slots=True)
class StreamChanges:
    """A PATCH: `None` leaves a column alone, except genre/description, cleared when set."""

    name: str | None = None
    set_genre: bool = False
    genre: str | None = None
    set_description: bool = False
    description: str | None = None
    visibility: str | None = None
    monetization_enabled: bool | None = None
    enabled: bool | None = None


INSERT = """
INSERT INTO streams (stream_id, owner_id, name, source_url, mount, server_kind, sid,
                     stream_key_enc, genre, description, visibility, monetization_enabled,
                     created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
RETURNING stream_id, owner_id, name, source_url, mount, server_kind, sid, stream_key_enc, genre,
       description, visibility, monetization_enabled, enabled, created_at, updated_at, deleted_at
"""
BY_ID = """
SELECT stream_id, owner_id, name, source_url, mount, server_kind, sid, stream_key_enc, genre,
       description, visibility, monetization_enabled, enabled, created_at, updated_at, deleted_at
FROM streams WHERE stream_id = $1
"""
PUSH_BY_MOUNT = """
SELECT stream_id, owner_id, name, source_url, mount, server_kind, sid, stream_key_enc, genre,
       description, visibility, monetization_enabled, enabled, created_at, updated_at, deleted_at
FROM streams WHERE mount = $1 AND server_kind = 'push' AND deleted_at IS NULL
"""
# Public, enabled streams plus the caller's own enabled private ones ($1 NULL: anonymous),
# of one genre ($4, any case) and matching a search ($5, an ILIKE pattern) when given;
# $2 NULL: every one.
DIRECTORY = """
SELECT stream_id, owner_id, name, source_url, mount, server_kind, sid, stream_key_enc, genre,
       description, visibility, monetization_enabled, enabled, created_at, updated_at, deleted_at,
       count(*) OVER () AS total
FROM streams
WHERE deleted_at IS NULL AND enabled AND (visibility = 'public' OR owner_id = $1)
  AND ($4::text IS NULL OR lower(genre) = lower($4))
  AND ($5::text IS NULL OR name ILIKE $5 OR description ILIKE $5 OR genre ILIKE $5)
ORDER BY created_at DESC, stream_id DESC LIMIT $2 OFFSET $3
"""
DIRECTORY_COUNT = """
SELECT count(*) FROM streams
WHERE deleted_at IS NULL AND enabled AND (visibility = 'public' OR owner_id = $1)
  AND ($2::text IS NULL OR lower(genre) = lower($2))
  AND ($3::text IS NULL OR name ILIKE $3 OR description ILIKE $3 OR genre ILIKE $3)
"""
OWNED = """
SELECT stream_id, owner_id, name, source_url, mount, server_kind, sid, stream_key_enc, genre,
       description, visibility, monetization_enabled, enabled, created_at, updated_at, deleted_at,
       count(*) OVER () AS total
FROM streams WHERE deleted_at IS NULL AND owner_id = $1
ORDER BY created_at DESC, stream_id DESC LIMIT $2 OFFSET $3
"""
OWNED_COUNT = "SELECT count(*) FROM streams WHERE deleted_at IS NULL AND owner_id = $1"
ENABLED = """
SELECT stream_id, owner_id, name, source_url, mount, server_kind, sid, stream_key_enc, genre,
       description, visibility, monetization_enabled, enabled, created_at, updated_at, deleted_at
FROM streams WHERE enabled AND deleted_at IS NULL ORDER BY created_at, stream_id
"""
UPDATE = """
UPDATE streams SET
    name = coalesce($2, name),
    genre = CASE WHEN $3 THEN $4 ELSE genre END,
    description = CASE WHEN $5 THEN $6 ELSE description END,
    visibility = coalesce($7, visibility),
    monetization_enabled = coalesce($8, monetization_enabled),
    enabled = coalesce($9, enabled),
    updated_at = $10
WHERE stream_id = $1 AND deleted_at IS NULL
RETURNING stream_id, owner_id, name, source_url, mount, server_kind, sid, stream_key_enc, genre,
       description, visibility, monetization_enabled, enabled, created_at, updated_at, deleted_at
"""
# A stream's source replaced (the demo stream, whose source gets a new port each run).
REPOINT = """
UPDATE streams SET source_url = $3, mount = $4, server_kind = $5, sid = $6, stream_key_enc = $7,
    name = $8, genre = $9, description = $10, enabled = true, updated_at = $11
WHERE stream_id = $1 AND owner_id = $2 AND deleted_at IS NULL
RETURNING stream_id, owner_id, name, source_url, mount, server_kind, sid, stream_key_enc, genre,
       description, visibility, monetization_enabled, enabled, created_at, updated_at, deleted_at
"""
SOFT_DELETE = """
UPDATE streams SET deleted_at = $2, updated_at = $2 WHERE stream_id = $1 AND deleted_at IS NULL
"""
# An account disabled or deleted: its streams go off air ($3: and are deleted).
OFF_AIR_OWNED = """
UPDATE streams SET enabled = false, updated_at = $2,
       deleted_at = CASE WHEN $3 THEN $2 ELSE deleted_at END
WHERE owner_id = $1 AND deleted_at IS NULL AND (enabled OR $3)
RETURNING stream_id
"""
OWNER_OF = "SELECT owner_id FROM streams WHERE stream_id = $1 AND deleted_at IS NULL"
# Serialises concurrent replacements of one stream's markers.
LOCK = "SELECT 1 FROM streams WHERE stream_id = $1 AND deleted_at IS NULL FOR UPDATE"
DELETE_ADS = "DELETE FROM streams_ads WHERE stream_id = $1"
INSERT_ADS = """
INSERT INTO streams_ads (stream_id, position_seconds, duration_seconds, ad_type, created_at)
SELECT $1, p, d, t, $5 FROM unnest($2::int[], $3::int[], $4::text[]) AS m (p, d, t)
"""
ADS = """
SELECT position_seconds, duration_seconds, ad_type FROM streams_ads WHERE stream_id = $1
ORDER BY position_seconds, duration_seconds, ad_type
"""

_NAMES = tuple(f.name for f in fields(StreamRow))


def _row(record: asyncpg.Record | None) -> StreamRow | None:
    if record is None:
        return None
    return StreamRow(*(record[name] for name in _NAMES))


async def insert(
    conn: Executor,
    stream_id: uuid.UUID,
    owner_id: uuid.UUID,
    body: StreamIn,
    server_kind: ServerKind,
    sid: int | None,
    key_enc: bytes,
    now: datetime,
) -> StreamRow:
    record = await conn.fetchrow(
        INSERT,
        stream_id,
        owner_id,
        body.name,
        body.shoutcast_url,
        body.mount,
        server_kind,
        sid,
        key_enc,
        body.genre,
        body.description,
        body.visibility,
        body.monetization_enabled,
        now,
    )
    row = _row(record)
    assert row is not None
    return row


async def by_id(conn: Executor, stream_id: uuid.UUID) -> StreamRow | None:
    """The stream, deleted or not."""
    return _row(await conn.fetchrow(BY_ID, stream_id))


@dataclass(frozen=True, slots=True)
class DirectoryFilter:
    """`genre`: equal to it, in any case; `search`: in the name, description or genre."""

    genre: str | None = None
    search: str | None = None

    @property
    def pattern(self) -> str | None:
        if self.search is None:
            return None
        escaped = self.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"%{escaped}%"


async def directory(
    conn: Executor,
    viewer_id: uuid.UUID | None,
    limit: int | None,
    offset: int,
    only: DirectoryFilter = DirectoryFilter(),
) -> tuple[list[StreamRow], int]:
    """A page of the directory (`limit` None: all of it from `offset`) and its total."""
    genre, pattern = only.genre, only.pattern
    records = await conn.fetch(DIRECTORY, viewer_id, limit, offset, genre, pattern)
    if not records:
        return [], int(await conn.fetchval(DIRECTORY_COUNT, viewer_id, genre, pattern))
    return [r for r in map(_row, records) if r is not None], int(records[0]["total"])


async def owned(
    conn: Executor, owner_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[StreamRow], int]:
    records = await conn.fetch(OWNED, owner_id, limit, offset)
    if not records:
        return [], int(await conn.fetchval(OWNED_COUNT, owner_id))
    return [r for r in map(_row, records) if r is not None], int(records[0]["total"])


async def enabled(conn: Executor) -> list[StreamRow]:
    return [r for r in map(_row, await conn.fetch(ENABLED)) if r is not None]


async def update(
    conn: Executor, stream_id: uuid.UUID, changes: StreamChanges, now: datetime
) -> StreamRow | None:
    """None when the stream is gone (deleted meanwhile)."""
    c = changes
    record = await conn.fetchrow(
        UPDATE,
        stream_id,
        c.name,
        c.set_genre,
        c.genre,
        c.set_description,
        c.description,
        c.visibility,
        c.monetization_enabled,
        c.enabled,
        now,
    )
    return _row(record)


async def repoint(
    conn: Executor,
    stream_id: uuid.UUID,
    owner_id: uuid.UUID,
    body: StreamIn,
    server_kind: ServerKind,
    sid: int | None,
    key_enc: bytes,
    now: datetime,
) -> StreamRow | None:
    """None when the owner has no such stream (deleted, or never was)."""
    record = await conn.fetchrow(
        REPOINT,
        stream_id,
        owner_id,
        body.shoutcast_url,
        body.mount,
        server_kind,
        sid,
        key_enc,
        body.name,
        body.genre,
        body.description,
        now,
    )
    return _row(record)


async def soft_delete(conn: Executor, stream_id: uuid.UUID, now: datetime) -> bool:
    return str(await conn.execute(SOFT_DELETE, stream_id, now)) == "UPDATE 1"


async def off_air_owned(
    conn: Executor, owner_id: uuid.UUID, now: datetime, delete: bool
) -> list[uuid.UUID]:
    return [r["stream_id"] for r in await conn.fetch(OFF_AIR_OWNED, owner_id, now, delete)]


async def owner_of(conn: Executor, stream_id: uuid.UUID) -> uuid.UUID | None:
    owner: uuid.UUID | None = await conn.fetchval(OWNER_OF, stream_id)
    return owner


async def replace_ads(
    conn: Executor, stream_id: uuid.UUID, markers: list[AdMarker], now: datetime
) -> bool:
    """Within the caller's transaction; False when the stream is gone."""
    if await conn.fetchval(LOCK, stream_id) is None:
        return False
    await conn.execute(DELETE_ADS, stream_id)
    await conn.execute(
        INSERT_ADS,
        stream_id,
        [m.position_seconds for m in markers],
        [m.duration_seconds for m in markers],
        [m.ad_type for m in markers],
        now,
    )
    return True


async def ads(conn: Executor, stream_id: uuid.UUID) -> list[AdMarker]:
    return [AdMarker(**dict(r)) for r in await conn.fetch(ADS, stream_id)]


async def push_by_mount(conn: Executor, mount: str) -> StreamRow | None:
    """The push stream (not deleted) whose encoder sends to `mount`."""
    record = await conn.fetchrow(PUSH_BY_MOUNT, mount)
    return _row(record)


async def set_key(conn: Executor, stream_id: uuid.UUID, key_enc: bytes) -> None:
    await conn.execute(
        "UPDATE streams SET stream_key_enc = $2, updated_at = now() WHERE stream_id = $1",
        stream_id,
        key_enc,
    )
