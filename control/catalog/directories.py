"""The playlist and podcast directories: their SQL and how an entry is shown.

Public means: a playlist with `visibility = 'public'` whose combined stream is ready; any
podcast not deleted (podcasts have no visibility: their feed is public, paid ones say
`monetization_enabled` and answer 403 to non-subscribers). `$1` is the search as
`to_tsquery` text, matched against `catalog_text_document` (the indexed expression)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from control.catalog.schemas import PlaylistEntry, PodcastEntry
from control.playlists.service import stream_urls
from mediaserver.db import Executor

_PLAYLIST_COLUMNS = """p.playlist_id, p.title, p.description, p.owner_id,
       p.monetization_enabled, p.created_at,
       (SELECT count(*) FROM playlist_tracks pt WHERE pt.playlist_id = p.playlist_id)
           AS track_count"""
_PLAYLIST_LISTED = "p.deleted_at IS NULL AND p.visibility = 'public' AND p.hls_ready"
#: The search as a scalar subquery: computed once per statement (`queries.tsquery_of`).
_TSQUERY = "(SELECT to_tsquery('simple', catalog_fold($1)))"
_PLAYLIST_MATCH = f"catalog_text_document(p.title, p.description) @@ {_TSQUERY}"

PLAYLISTS_NEWEST = f"""
SELECT {_PLAYLIST_COLUMNS},
       (SELECT count(*) FROM playlists p WHERE {_PLAYLIST_LISTED}) AS total
  FROM playlists p WHERE {_PLAYLIST_LISTED}
 ORDER BY p.created_at DESC, p.playlist_id DESC LIMIT $1 OFFSET $2
"""  # noqa: S608 (constant fragments, no input)
PLAYLISTS_COUNT = f"SELECT count(*) FROM playlists p WHERE {_PLAYLIST_LISTED}"  # noqa: S608 (constant fragments)
PLAYLISTS_SEARCH = f"""
WITH hits AS MATERIALIZED (
    SELECT p.playlist_id, p.created_at,
           ts_rank_cd(catalog_text_document(p.title, p.description), {_TSQUERY}) AS rank
      FROM playlists p
     WHERE {_PLAYLIST_MATCH} AND {_PLAYLIST_LISTED}
)
SELECT {_PLAYLIST_COLUMNS}, (SELECT count(*) FROM hits) AS total
  FROM hits h JOIN playlists p USING (playlist_id)
 ORDER BY h.rank DESC, h.created_at DESC, h.playlist_id LIMIT $2 OFFSET $3
"""  # noqa: S608 (constant fragments, no input)
PLAYLISTS_SEARCH_COUNT = f"""
SELECT count(*) FROM playlists p WHERE {_PLAYLIST_MATCH} AND {_PLAYLIST_LISTED}
"""  # noqa: S608 (constant fragments, no input)

_PODCAST_COLUMNS = """p.podcast_id, p.title, p.description, p.author, p.category,
       p.language, p.image_url, p.explicit, p.monetization_enabled, p.created_at,
       (SELECT count(*) FROM episodes e
         WHERE e.podcast_id = p.podcast_id AND e.deleted_at IS NULL
           AND e.publication_date <= now()) AS episode_count"""
_PODCAST_TSQUERY = "(SELECT to_tsquery('simple', catalog_fold(coalesce($1, ''))))"
_PODCAST_LISTED = f"""p.deleted_at IS NULL
   AND ($2::text IS NULL OR lower(p.category) = lower($2))
   AND ($3::text IS NULL OR p.language = $3)
   AND ($1::text IS NULL
        OR catalog_text_document(p.title || ' ' || p.author, p.description)
           @@ {_PODCAST_TSQUERY})"""
PODCASTS = f"""
WITH hits AS MATERIALIZED (
    SELECT p.podcast_id, p.created_at,
           CASE WHEN $1::text IS NULL THEN 0
                ELSE ts_rank_cd(catalog_text_document(p.title || ' ' || p.author, p.description),
                                {_PODCAST_TSQUERY}) END AS rank
      FROM podcasts p
     WHERE {_PODCAST_LISTED}
)
SELECT {_PODCAST_COLUMNS}, (SELECT count(*) FROM hits) AS total
  FROM hits h JOIN podcasts p USING (podcast_id)
 ORDER BY h.rank DESC, h.created_at DESC, h.podcast_id DESC LIMIT $4 OFFSET $5
"""  # noqa: S608 (constant fragments, no input)
PODCASTS_COUNT = f"SELECT count(*) FROM podcasts p WHERE {_PODCAST_LISTED}"  # noqa: S608 (constant fragments)


@dataclass(frozen=True, slots=True)
class PlaylistRow:
    playlist_id: uuid.UUID
    title: str
    description: str
    owner_id: uuid.UUID
    monetization_enabled: bool
    created_at: datetime
    track_count: int


@dataclass(frozen=True, slots=True)
class PodcastRow:
    podcast_id: uuid.UUID
    title: str
    description: str
    author: str
    category: str
    language: str
    image_url: str
    explicit: bool
    monetization_enabled: bool
    created_at: datetime
    episode_count: int


@dataclass(frozen=True, slots=True)
class PodcastFilter:
    tsquery: str | None = None
    category: str | None = None
    language: str | None = None


def _fields(record: asyncpg.Record) -> dict[str, object]:
    return {key: value for key, value in record.items() if key != "total"}


async def playlists(
    conn: Executor, tsquery: str | None, limit: int, offset: int
) -> tuple[list[PlaylistRow], int]:
    """A page of the directory (best match first with a search) and its total."""
    if tsquery is None:
        records = await conn.fetch(PLAYLISTS_NEWEST, limit, offset)
        if not records:
            return [], int(await conn.fetchval(PLAYLISTS_COUNT))
    else:
        records = await conn.fetch(PLAYLISTS_SEARCH, tsquery, limit, offset)
        if not records:
            return [], int(await conn.fetchval(PLAYLISTS_SEARCH_COUNT, tsquery))
    return [PlaylistRow(**_fields(r)) for r in records], int(records[0]["total"])  # type: ignore[arg-type]


async def podcasts(
    conn: Executor, only: PodcastFilter, limit: int, offset: int
) -> tuple[list[PodcastRow], int]:
    args = (only.tsquery, only.category, only.language)
    records = await conn.fetch(PODCASTS, *args, limit, offset)
    if not records:
        return [], int(await conn.fetchval(PODCASTS_COUNT, *args))
    return [PodcastRow(**_fields(r)) for r in records], int(records[0]["total"])  # type: ignore[arg-type]


def playlist_out(row: PlaylistRow, origin: str) -> PlaylistEntry:
    return PlaylistEntry(
        playlist_id=row.playlist_id,
        title=row.title,
        description=row.description,
        owner_id=row.owner_id,
        track_count=row.track_count,
        monetization_enabled=row.monetization_enabled,
        created_at=row.created_at,
        url=f"{origin}/v1/playlists/{row.playlist_id}",
        hls_url=stream_urls(origin, row.playlist_id).hls,
    )


def podcast_out(row: PodcastRow, origin: str) -> PodcastEntry:
    url = f"{origin}/v1/podcasts/{row.podcast_id}"
    return PodcastEntry(
        podcast_id=row.podcast_id,
        title=row.title,
        description=row.description,
        author=row.author,
        category=row.category,
        language=row.language,
        image_url=row.image_url,
        explicit=row.explicit,
        monetization_enabled=row.monetization_enabled,
        episode_count=row.episode_count,
        created_at=row.created_at,
        url=url,
        rss_feed_url=f"{url}/rss.xml",
    )
