"""SQL of the song history and of the stations the now-playing routes list."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime

from control.nowplaying.titles import Song
from mediaserver.db import Executor


@dataclass(frozen=True, slots=True)
class SongRow:
    text: str
    artist: str | None
    title: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class StationRow:
    """A public, enabled stream and the song its history says is playing (if any)."""

    stream_id: uuid.UUID
    name: str
    genre: str | None
    description: str | None
    monetization_enabled: bool
    song_text: str | None
    song_started_at: datetime | None


# The song playing now, locked: two writers (a takeover's old and new owner) take turns.
PLAYING = """
SELECT song_id, text FROM stream_songs WHERE stream_id = $1 AND ended_at IS NULL FOR UPDATE
"""
END = "UPDATE stream_songs SET ended_at = $2 WHERE song_id = $1"
INSERT = """
INSERT INTO stream_songs (stream_id, text, artist, title, started_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING
"""
PAGE = """
SELECT text, artist, title, started_at, ended_at, count(*) OVER () AS total
FROM stream_songs WHERE stream_id = $1
ORDER BY started_at DESC, song_id DESC LIMIT $2 OFFSET $3
"""
COUNT = "SELECT count(*) FROM stream_songs WHERE stream_id = $1"
STATIONS = """
SELECT s.stream_id, s.name, s.genre, s.description, s.monetization_enabled,
       h.text AS song_text, h.started_at AS song_started_at
FROM streams s
LEFT JOIN stream_songs h ON h.stream_id = s.stream_id AND h.ended_at IS NULL
WHERE s.deleted_at IS NULL AND s.enabled AND s.visibility = 'public'
ORDER BY s.created_at DESC, s.stream_id DESC
"""


async def change_song(
    conn: Executor, stream_id: uuid.UUID, song: Song | None, at: datetime
) -> bool:
    """Within the caller's transaction: end the song playing and start `song` (None:
    nothing plays now). False when `song` is the one already playing (a relay that took
    the stream over announces it again): nothing changes."""
    playing = await conn.fetchrow(PLAYING, stream_id)
    if playing is not None:
        if song is not None and playing["text"] == song.text:
            return False
        await conn.execute(END, playing["song_id"], at)
    elif song is None:
        return False
    if song is not None:
        await conn.execute(INSERT, stream_id, song.text, song.artist, song.title, at)
    return True


async def history(
    conn: Executor, stream_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[SongRow], int]:
    records = await conn.fetch(PAGE, stream_id, limit, offset)
    if not records:  # past the end (first page: there is nothing, whatever came since)
        return [], int(await conn.fetchval(COUNT, stream_id)) if offset else 0
    names = [f.name for f in fields(SongRow)]
    return [SongRow(*(r[n] for n in names)) for r in records], int(records[0]["total"])


async def stations(conn: Executor) -> list[StationRow]:
    names = [f.name for f in fields(StationRow)]
    return [StationRow(*(r[n] for n in names)) for r in await conn.fetch(STATIONS)]
