"""SQL of podcasts and their episodes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from control.podcasts.schemas import EpisodeType, PodcastType, SourceType
from mediaserver.db import Executor


@dataclass(frozen=True, slots=True)
class PodcastRow:
    podcast_id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str
    author: str
    language: str
    image_url: str
    category: str
    explicit: bool
    podcast_type: PodcastType
    owner_name: str
    owner_email: str
    custom_domain: str | None
    monetization_enabled: bool
    feed_guid: uuid.UUID
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class EpisodeRow:
    episode_id: uuid.UUID
    podcast_id: uuid.UUID
    title: str
    description: str
    episode_number: int | None
    season: int | None
    episode_type: EpisodeType
    publication_date: datetime
    source_type: SourceType
    upload_id: uuid.UUID | None
    external_url: str | None
    media_size_bytes: int
    duration_seconds: int | None
    explicit: bool
    monetization_required: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class FeedState:
    """When the feed's content last changed, and when the next scheduled episode appears."""

    changed_at: datetime
    next_publication: datetime | None


# Columns a PATCH may change (the rest are fixed at creation), in the order of the UPDATEs.
_PODCAST_MUTABLE = (
    "title", "description", "author", "language", "image_url", "category", "explicit",
    "podcast_type", "owner_name", "owner_email", "custom_domain", "monetization_enabled",
)  # fmt: skip
_EPISODE_MUTABLE = (
    "title", "description", "episode_number", "season", "episode_type", "publication_date",
    "source_type", "upload_id", "external_url", "media_size_bytes", "duration_seconds",
    "explicit", "monetization_required",
)  # fmt: skip

INSERT_PODCAST = """
INSERT INTO podcasts (podcast_id, owner_id, title, description, author, language, image_url,
                      category, explicit, podcast_type, owner_name, owner_email, custom_domain,
                      monetization_enabled, feed_guid, created_at, updated_at, deleted_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
RETURNING podcast_id, owner_id, title, description, author, language, image_url, category,
       explicit, podcast_type, owner_name, owner_email, custom_domain, monetization_enabled,
       feed_guid, created_at, updated_at, deleted_at
"""
PODCAST = """
SELECT podcast_id, owner_id, title, description, author, language, image_url, category,
       explicit, podcast_type, owner_name, owner_email, custom_domain, monetization_enabled,
       feed_guid, created_at, updated_at, deleted_at
FROM podcasts WHERE podcast_id = $1 AND deleted_at IS NULL
"""
PODCAST_FOR_UPDATE = PODCAST + "FOR UPDATE\n"
OWNED = """
SELECT podcast_id, owner_id, title, description, author, language, image_url, category,
       explicit, podcast_type, owner_name, owner_email, custom_domain, monetization_enabled,
       feed_guid, created_at, updated_at, deleted_at, count(*) OVER () AS total
FROM podcasts WHERE owner_id = $1 AND deleted_at IS NULL
ORDER BY created_at DESC, podcast_id DESC LIMIT $2 OFFSET $3
"""
OWNED_COUNT = "SELECT count(*) FROM podcasts WHERE owner_id = $1 AND deleted_at IS NULL"
UPDATE_PODCAST = """
UPDATE podcasts SET title = $3, description = $4, author = $5, language = $6, image_url = $7,
    category = $8, explicit = $9, podcast_type = $10, owner_name = $11, owner_email = $12,
    custom_domain = $13, monetization_enabled = $14, updated_at = $2
WHERE podcast_id = $1 AND deleted_at IS NULL
RETURNING podcast_id, owner_id, title, description, author, language, image_url, category,
       explicit, podcast_type, owner_name, owner_email, custom_domain, monetization_enabled,
       feed_guid, created_at, updated_at, deleted_at
"""
DELETE_PODCAST = """
UPDATE podcasts SET deleted_at = $2, updated_at = $2 WHERE podcast_id = $1 AND deleted_at IS NULL
"""
OWNED_IDS = "SELECT podcast_id FROM podcasts WHERE owner_id = $1 AND deleted_at IS NULL"
# A podcast taken down with its owner's account (its feed and media answer 410, not 404).
GONE_WITH_OWNER = """
SELECT EXISTS (SELECT 1 FROM podcasts p JOIN users u ON u.user_id = p.owner_id
               WHERE p.podcast_id = $1 AND u.deleted_at IS NOT NULL)
"""
INSERT_EPISODE = """
INSERT INTO episodes (episode_id, podcast_id, title, description, episode_number, season,
                      episode_type, publication_date, source_type, upload_id, external_url,
                      media_size_bytes, duration_seconds, explicit, monetization_required,
                      created_at, updated_at, deleted_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
RETURNING episode_id, podcast_id, title, description, episode_number, season, episode_type,
       publication_date, source_type, upload_id, external_url, media_size_bytes,
       duration_seconds, explicit, monetization_required, created_at, updated_at, deleted_at
"""
EPISODE = """
SELECT episode_id, podcast_id, title, description, episode_number, season, episode_type,
       publication_date, source_type, upload_id, external_url, media_size_bytes,
       duration_seconds, explicit, monetization_required, created_at, updated_at, deleted_at
FROM episodes WHERE podcast_id = $1 AND episode_id = $2 AND deleted_at IS NULL
"""
EPISODE_FOR_UPDATE = EPISODE + "FOR UPDATE\n"
# Newest first; $2 NULL: scheduled (future) episodes too.
EPISODES = """
SELECT episode_id, podcast_id, title, description, episode_number, season, episode_type,
       publication_date, source_type, upload_id, external_url, media_size_bytes,
       duration_seconds, explicit, monetization_required, created_at, updated_at, deleted_at
FROM episodes
WHERE podcast_id = $1 AND deleted_at IS NULL
  AND ($2::timestamptz IS NULL OR publication_date <= $2)
ORDER BY publication_date DESC, episode_number DESC NULLS LAST, created_at DESC
"""
UPDATE_EPISODE = """
UPDATE episodes SET title = $4, description = $5, episode_number = $6, season = $7,
    episode_type = $8, publication_date = $9, source_type = $10, upload_id = $11,
    external_url = $12, media_size_bytes = $13, duration_seconds = $14, explicit = $15,
    monetization_required = $16, updated_at = $3
WHERE podcast_id = $1 AND episode_id = $2 AND deleted_at IS NULL
RETURNING episode_id, podcast_id, title, description, episode_number, season, episode_type,
       publication_date, source_type, upload_id, external_url, media_size_bytes,
       duration_seconds, explicit, monetization_required, created_at, updated_at, deleted_at
"""
DELETE_EPISODE = """
UPDATE episodes SET deleted_at = $3, updated_at = $3
WHERE podcast_id = $1 AND episode_id = $2 AND deleted_at IS NULL
"""
# Deleted episodes count too: removing one changes the feed. Episodes published since their
# last edit changed it at their publication date.
FEED_STATE = """
SELECT greatest(p.updated_at, max(e.updated_at),
                max(e.publication_date) FILTER (WHERE e.publication_date <= $2)) AS changed_at,
       min(e.publication_date) FILTER (WHERE e.publication_date > $2 AND e.deleted_at IS NULL)
           AS next_publication
FROM podcasts p LEFT JOIN episodes e ON e.podcast_id = p.podcast_id
WHERE p.podcast_id = $1 AND p.deleted_at IS NULL
GROUP BY p.podcast_id
"""
UPLOAD_USER = """
SELECT e.title AS episode, p.title AS podcast FROM episodes e
JOIN podcasts p ON p.podcast_id = e.podcast_id
WHERE e.upload_id = $1 AND e.deleted_at IS NULL AND p.deleted_at IS NULL
ORDER BY e.created_at LIMIT 1
"""
# Episodes whose upload was deleted (with `force`) leave their feeds; the podcasts they left.
DELETE_UPLOAD_EPISODES = """
UPDATE episodes SET deleted_at = $2, updated_at = $2
WHERE upload_id = $1 AND deleted_at IS NULL
RETURNING podcast_id
"""


def _podcast(record: asyncpg.Record | None) -> PodcastRow | None:
    if record is None:
        return None
    return PodcastRow(*(record[f.name] for f in fields(PodcastRow)))


def _episode(record: asyncpg.Record | None) -> EpisodeRow | None:
    if record is None:
        return None
    return EpisodeRow(*(record[f.name] for f in fields(EpisodeRow)))


def _values(row: Any) -> list[Any]:
    return [getattr(row, f.name) for f in fields(row)]


async def insert_podcast(conn: Executor, row: PodcastRow) -> PodcastRow:
    inserted = _podcast(await conn.fetchrow(INSERT_PODCAST, *_values(row)))
    assert inserted is not None
    return inserted


async def podcast(
    conn: Executor, podcast_id: uuid.UUID, *, lock: bool = False
) -> PodcastRow | None:
    """The live podcast; `lock` (in a transaction) holds it until the transaction ends."""
    return _podcast(await conn.fetchrow(PODCAST_FOR_UPDATE if lock else PODCAST, podcast_id))


async def owned(
    conn: Executor, owner_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[PodcastRow], int]:
    records = await conn.fetch(OWNED, owner_id, limit, offset)
    if not records:
        return [], int(await conn.fetchval(OWNED_COUNT, owner_id))
    return [r for r in map(_podcast, records) if r is not None], int(records[0]["total"])


async def update_podcast(conn: Executor, row: PodcastRow, now: datetime) -> PodcastRow | None:
    """Write every mutable column of `row`; None when the podcast is gone."""
    values = [getattr(row, c) for c in _PODCAST_MUTABLE]
    return _podcast(await conn.fetchrow(UPDATE_PODCAST, row.podcast_id, now, *values))


async def delete_podcast(conn: Executor, podcast_id: uuid.UUID, now: datetime) -> bool:
    return str(await conn.execute(DELETE_PODCAST, podcast_id, now)) == "UPDATE 1"


async def owned_ids(conn: Executor, owner_id: uuid.UUID) -> list[uuid.UUID]:
    return [r["podcast_id"] for r in await conn.fetch(OWNED_IDS, owner_id)]


async def gone_with_owner(conn: Executor, podcast_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval(GONE_WITH_OWNER, podcast_id))


async def insert_episode(conn: Executor, row: EpisodeRow) -> EpisodeRow:
    inserted = _episode(await conn.fetchrow(INSERT_EPISODE, *_values(row)))
    assert inserted is not None
    return inserted


async def episode(
    conn: Executor, podcast_id: uuid.UUID, episode_id: uuid.UUID, *, lock: bool = False
) -> EpisodeRow | None:
    query = EPISODE_FOR_UPDATE if lock else EPISODE
    return _episode(await conn.fetchrow(query, podcast_id, episode_id))


async def episodes(
    conn: Executor, podcast_id: uuid.UUID, published_by: datetime | None
) -> list[EpisodeRow]:
    """Live episodes, newest first; with `published_by`, only those published by then."""
    records = await conn.fetch(EPISODES, podcast_id, published_by)
    return [r for r in map(_episode, records) if r is not None]


async def update_episode(conn: Executor, row: EpisodeRow, now: datetime) -> EpisodeRow | None:
    values = [getattr(row, c) for c in _EPISODE_MUTABLE]
    record = await conn.fetchrow(UPDATE_EPISODE, row.podcast_id, row.episode_id, now, *values)
    return _episode(record)


async def delete_episode(
    conn: Executor, podcast_id: uuid.UUID, episode_id: uuid.UUID, now: datetime
) -> bool:
    return str(await conn.execute(DELETE_EPISODE, podcast_id, episode_id, now)) == "UPDATE 1"


async def feed_state(conn: Executor, podcast_id: uuid.UUID, now: datetime) -> FeedState | None:
    record = await conn.fetchrow(FEED_STATE, podcast_id, now)
    if record is None:
        return None
    return FeedState(record["changed_at"], record["next_publication"])


async def upload_user(conn: Executor, upload_id: uuid.UUID) -> tuple[str, str] | None:
    """(episode title, podcast title) of a live episode using the upload, if any."""
    record = await conn.fetchrow(UPLOAD_USER, upload_id)
    return None if record is None else (record["episode"], record["podcast"])


async def delete_upload_episodes(
    conn: Executor, upload_id: uuid.UUID, now: datetime
) -> set[uuid.UUID]:
    """Soft-delete every live episode playing the upload; the ids of their podcasts."""
    return {r["podcast_id"] for r in await conn.fetch(DELETE_UPLOAD_EPISODES, upload_id, now)}
