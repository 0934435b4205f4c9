"""SQL of DJ profiles, and the read-only view of what a DJ offers (streams, playlists,
podcasts) that their public page lists."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mediaserver.db import Executor


@dataclass(frozen=True, slots=True)
class ProfileRow:
    user_id: uuid.UUID
    stage_name: str
    bio: str
    genres: list[str]
    links: list[dict[str, str]]
    avatar_key: str | None
    updated_at: datetime


_COLUMNS = "user_id, stage_name, bio, genres, links, avatar_key, updated_at"
UPSERT = f"""
INSERT INTO dj_profiles (user_id, stage_name, bio, genres, links, updated_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (user_id) DO UPDATE SET stage_name = $2, bio = $3, genres = $4, links = $5,
    updated_at = $6
RETURNING {_COLUMNS}
"""  # noqa: S608 (a constant column list, no input)
# Only the profiles of live, active DJs (and admins) are public.
PUBLIC = f"""
SELECT {", ".join("p." + c.strip() for c in _COLUMNS.split(","))} FROM dj_profiles p
JOIN users u ON u.user_id = p.user_id
WHERE p.user_id = $1 AND u.deleted_at IS NULL AND u.status = 'active'
"""  # noqa: S608
LOCK_AVATAR = "SELECT avatar_key FROM dj_profiles WHERE user_id = $1 FOR UPDATE"
SET_AVATAR = "UPDATE dj_profiles SET avatar_key = $2, updated_at = $3 WHERE user_id = $1"
ON_AIR = """
SELECT stream_id, name, genre FROM streams
WHERE owner_id = $1 AND deleted_at IS NULL AND enabled AND visibility = 'public'
ORDER BY created_at DESC, stream_id DESC LIMIT 50
"""
PUBLIC_PLAYLISTS = """
SELECT playlist_id, title FROM playlists
WHERE owner_id = $1 AND deleted_at IS NULL AND visibility = 'public'
ORDER BY created_at DESC, playlist_id DESC LIMIT 50
"""
PODCASTS = """
SELECT podcast_id, title FROM podcasts WHERE owner_id = $1 AND deleted_at IS NULL
ORDER BY created_at DESC, podcast_id DESC LIMIT 50
"""
DROP = "DELETE FROM dj_profiles WHERE user_id = $1 RETURNING avatar_key"


def _row(record: Any) -> ProfileRow | None:
    return ProfileRow(*record.values()) if record is not None else None


async def upsert(
    conn: Executor,
    user_id: uuid.UUID,
    stage_name: str,
    bio: str,
    genres: list[str],
    links: list[dict[str, str]],
    now: datetime,
) -> ProfileRow:
    row = _row(await conn.fetchrow(UPSERT, user_id, stage_name, bio, genres, links, now))
    assert row is not None
    return row


async def public(conn: Executor, user_id: uuid.UUID) -> ProfileRow | None:
    return _row(await conn.fetchrow(PUBLIC, user_id))


async def set_avatar(
    conn: Executor, user_id: uuid.UUID, key: str, now: datetime
) -> tuple[bool, str | None]:
    """(the profile exists, the key it had before); call within a transaction."""
    record = await conn.fetchrow(LOCK_AVATAR, user_id)
    if record is None:
        return False, None
    await conn.execute(SET_AVATAR, user_id, key, now)
    return True, record["avatar_key"]


async def offer(conn: Executor, user_id: uuid.UUID) -> tuple[list[Any], list[Any], list[Any]]:
    """The DJ's on-air public streams, public playlists and podcasts."""
    return (
        await conn.fetch(ON_AIR, user_id),
        await conn.fetch(PUBLIC_PLAYLISTS, user_id),
        await conn.fetch(PODCASTS, user_id),
    )


async def drop(conn: Executor, user_id: uuid.UUID) -> str | None:
    """Delete the profile; its avatar's key, if any."""
    value = await conn.fetchval(DROP, user_id)
    return str(value) if value is not None else None
