"""Podcast episodes: adding, changing and deleting them (backlog US-4.3 – US-4.5).

An episode's media is an upload of the podcast owner's that is `ready` (served by this
server with byte ranges), or an external MP3 URL checked by `ExternalMediaProbe`. Every
change drops the podcast's cached feed, so the very next feed request shows it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from aiohttp import web

from control import access
from control.podcasts import queries
from control.podcasts.external import ExternalMediaProbe
from control.podcasts.feedcache import FeedCache
from control.podcasts.queries import EpisodeRow, PodcastRow
from control.podcasts.schemas import (
    EpisodeCreated,
    EpisodeIn,
    EpisodeUpdate,
    EpisodeUpdated,
    SourceType,
    check_source,
)
from control.security import Principal
from mediaserver.clock import Clock, utcnow
from mediaserver.db import Executor
from mediaserver.errors import Conflict, InvalidInput, Unprocessable


class ReadyUpload(Protocol):
    @property
    def size_bytes(self) -> int: ...

    @property
    def duration_seconds(self) -> Any: ...


class UploadCatalog(Protocol):
    async def ready(self, owner_id: uuid.UUID, upload_id: uuid.UUID) -> ReadyUpload:
        """The owner's upload if it is ready to serve, else `Unprocessable` (422)."""
        ...


@dataclass(frozen=True, slots=True)
class Media:
    """Checked media of an episode."""

    source_type: SourceType
    upload_id: uuid.UUID | None
    external_url: str | None
    size_bytes: int
    duration_seconds: int | None


class EpisodesService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        probe: ExternalMediaProbe,
        cache: FeedCache,
        uploads: UploadCatalog | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._pool = pool
        self._probe = probe
        self._cache = cache
        self._uploads = uploads
        self._clock = clock

    async def add(
        self, principal: Principal, podcast_id: uuid.UUID, body: EpisodeIn
    ) -> EpisodeCreated:
        """Check the media (422), store the episode (409 on a duplicate episode number)."""
        podcast = await self._owned(principal, podcast_id)
        media = await self._media(
            podcast.owner_id,
            body.source_type,
            body.upload_id,
            body.media_url,
            duration_known=body.duration_seconds is not None,
        )
        now = self._clock()
        row = EpisodeRow(
            episode_id=uuid.uuid4(),
            podcast_id=podcast_id,
            title=body.title,
            description=body.description,
            episode_number=body.episode_number,
            season=body.season,
            episode_type=body.episode_type,
            publication_date=body.publication_date or now,
            source_type=media.source_type,
            upload_id=media.upload_id,
            external_url=media.external_url,
            media_size_bytes=media.size_bytes,
            duration_seconds=_first(body.duration_seconds, media.duration_seconds),
            explicit=body.explicit,
            monetization_required=body.monetization_required,
            created_at=now,
            updated_at=now,
            deleted_at=None,
        )
        await _write(self._pool, row, None)
        await self._cache.invalidate(podcast_id)
        return EpisodeCreated(episode_id=row.episode_id)

    async def update(
        self,
        principal: Principal,
        podcast_id: uuid.UUID,
        episode_id: uuid.UUID,
        body: EpisodeUpdate,
    ) -> EpisodeUpdated:
        """Change the fields sent; new media is checked like on creation."""
        sent = body.changes()
        podcast = await self._owned(principal, podcast_id)
        current = await queries.episode(self._pool, podcast_id, episode_id)
        if current is None:
            raise access.EPISODE.not_found()
        media = await self._changed_media(podcast.owner_id, current, sent)
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await queries.episode(conn, podcast_id, episode_id, lock=True)
            if fresh is None:
                raise access.EPISODE.not_found()
            await _write(conn, _apply(fresh, sent, media), self._clock())
        await self._cache.invalidate(podcast_id)
        return EpisodeUpdated(episode_id=episode_id, updated_fields=list(sent))

    async def delete(
        self, principal: Principal, podcast_id: uuid.UUID, episode_id: uuid.UUID
    ) -> None:
        """Soft delete; the episode leaves the feed at once."""
        await self._owned(principal, podcast_id)
        if not await queries.delete_episode(self._pool, podcast_id, episode_id, self._clock()):
            raise access.EPISODE.not_found()
        await self._cache.invalidate(podcast_id)

    async def upload_in_use(self, upload_id: uuid.UUID) -> str | None:
        """For the uploads service: why the upload cannot be deleted, or None."""
        found = await queries.upload_user(self._pool, upload_id)
        if found is None:
            return None
        episode, podcast = found
        return f"The upload is used by episode '{episode}' of podcast '{podcast}'"

    async def upload_deleted(self, upload_id: uuid.UUID) -> None:
        """For the uploads service, once the upload is deleted (with `force`): the episodes
        playing it are soft-deleted (their enclosure would only 404), and the feeds they
        were in are dropped from the cache at once."""
        for podcast_id in await queries.delete_upload_episodes(
            self._pool, upload_id, self._clock()
        ):
            await self._cache.invalidate(podcast_id)

    async def _owned(self, principal: Principal, podcast_id: uuid.UUID) -> PodcastRow:
        row = await queries.podcast(self._pool, podcast_id)
        if row is None:
            raise access.PODCAST.not_found()
        access.PODCAST.check_owner(principal, row.owner_id)
        return row

    async def _changed_media(
        self, owner_id: uuid.UUID, current: EpisodeRow, sent: dict[str, Any]
    ) -> Media | None:
        """The checked new media when the PATCH changes it, else None."""
        source = sent.get("source_type", current.source_type)
        same_source = source == current.source_type
        upload_id = sent.get("upload_id", current.upload_id if same_source else None)
        media_url = sent.get("media_url", current.external_url if same_source else None)
        try:
            check_source(source, upload_id, media_url)
        except ValueError as exc:
            raise InvalidInput(f"{exc}.") from None
        if (source, upload_id, media_url) == (
            current.source_type,
            current.upload_id,
            current.external_url,
        ):
            return None
        known = sent.get("duration_seconds") is not None
        return await self._media(owner_id, source, upload_id, media_url, duration_known=known)

    async def _media(
        self,
        owner_id: uuid.UUID,
        source: SourceType,
        upload_id: uuid.UUID | None,
        media_url: str | None,
        *,
        duration_known: bool = False,
    ) -> Media:
        """The checked media; an external one's duration is estimated unless known."""
        if source == "external":
            assert media_url is not None
            found = await self._probe.check(media_url, want_duration=not duration_known)
            return Media("external", None, media_url, found.size_bytes, found.duration_seconds)
        assert upload_id is not None
        if self._uploads is None:
            raise Unprocessable("Uploads are not available on this server")
        upload = await self._uploads.ready(owner_id, upload_id)
        duration = upload.duration_seconds
        return Media(
            "upload",
            upload_id,
            None,
            upload.size_bytes,
            round(duration) if duration is not None else None,
        )


def _apply(row: EpisodeRow, sent: dict[str, Any], media: Media | None) -> EpisodeRow:
    """`row` with the PATCH's fields (and the checked media) applied."""
    fields = {k: v for k, v in sent.items() if k not in ("source_type", "upload_id", "media_url")}
    if media is not None:
        fields.update(
            source_type=media.source_type,
            upload_id=media.upload_id,
            external_url=media.external_url,
            media_size_bytes=media.size_bytes,
        )
        # New media, new duration (unless sent; an external one's only when estimated).
        if "duration_seconds" not in sent and (
            media.source_type == "upload" or media.duration_seconds is not None
        ):
            fields["duration_seconds"] = media.duration_seconds
    return replace(row, **fields)


async def _write(conn: Executor, row: EpisodeRow, now: datetime | None) -> None:
    """Insert (`now` None) or update `row`; 409 when its episode number is taken."""
    try:
        if now is None:
            await queries.insert_episode(conn, row)
        elif await queries.update_episode(conn, row, now) is None:
            raise access.EPISODE.not_found()
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"Episode number {row.episode_number} already exists in this podcast"
        ) from None


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


EPISODES = web.AppKey("episodes_service", EpisodesService)
