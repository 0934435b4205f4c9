"""What podcast apps fetch: the feed (backlog US-4.6) and episode media.

The feed is rendered from one consistent read of the podcast and its published episodes,
then cached (`FeedCache`) until the next change, `FEED_TTL`, or the next scheduled
episode's publication — whichever comes first. Its ETag is a hash of the body and its
Last-Modified the last change of its content, so polling apps get cheap 304s."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiohttp import web

from control.analytics.service import AnalyticsService
from control.monetization.service import PaywallService
from control.podcasts import queries
from control.podcasts.access import (
    check_paywall,
    episode_not_found,
    is_privileged,
    podcast_not_found,
)
from control.podcasts.feed import Channel, Item, render_feed
from control.podcasts.feedcache import FEED_TTL, CachedFeed, FeedCache
from control.podcasts.queries import EpisodeRow, PodcastRow
from control.podcasts.uploads import EpisodeUploads
from control.podcasts.views import Links
from control.security import Principal
from mediaserver.clock import Clock, utcnow
from mediaserver.config import Settings
from mediaserver.errors import NotFound

EPISODE = "episode"
DOWNLOADS = "downloads"


@dataclass(frozen=True, slots=True)
class EpisodeMedia:
    """Where an episode's audio is: elsewhere (`external_url`), or an object of ours."""

    episode_id: uuid.UUID
    external_url: str | None
    key: str
    size: int
    etag: str
    last_modified: datetime


class DeliveryService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        cache: FeedCache,
        paywall: PaywallService,
        analytics: AnalyticsService,
        settings: Settings,
        uploads: EpisodeUploads | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._pool = pool
        self._cache = cache
        self._paywall = paywall
        self._analytics = analytics
        self._links = Links(settings.base_url)
        self._uploads = uploads
        self._clock = clock

    async def feed(self, principal: Principal | None, podcast_id: uuid.UUID) -> CachedFeed:
        """The podcast's feed, from the cache when fresh; 404 for an unknown podcast,
        401/403 behind the paywall (`control.podcasts.access`)."""
        now = self._clock()
        feed, generation = await self._cache.get(podcast_id, now)
        if feed is None:
            feed = await self._build(podcast_id, now)
            await self._cache.put(podcast_id, feed, generation)
        await check_paywall(self._paywall, principal, feed.owner_id, feed.paywalled)
        return feed

    async def media(
        self, principal: Principal | None, podcast_id: uuid.UUID, episode_id: uuid.UUID
    ) -> EpisodeMedia:
        """An episode's audio, for a caller past the paywall. Scheduled episodes are 404
        until their publication date, except for the owner and admins."""
        podcast = await queries.podcast(self._pool, podcast_id)
        if podcast is None:
            raise podcast_not_found()
        episode = await queries.episode(self._pool, podcast_id, episode_id)
        if episode is None or (
            episode.publication_date > self._clock()
            and not is_privileged(principal, podcast.owner_id)
        ):
            raise episode_not_found()
        paywalled = podcast.monetization_enabled or episode.monetization_required
        await check_paywall(self._paywall, principal, podcast.owner_id, paywalled)
        if episode.upload_id is None or self._uploads is None:
            url = episode.external_url
            if url is None:
                raise NotFound("The episode's media is not available on this server")
            return EpisodeMedia(episode_id, url, "", 0, "", episode.updated_at)
        upload = await self._uploads.source(episode.upload_id)
        # An upload's source never changes: its id is a strong validator.
        etag = f'"{upload.upload_id.hex}"'
        return EpisodeMedia(
            episode_id, None, upload.source_key, upload.size_bytes, etag, upload.created_at
        )

    async def read(self, media: EpisodeMedia, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Bytes `start..end` (inclusive) of the episode's audio."""
        assert self._uploads is not None
        return await self._uploads.read(media.key, start, end)

    async def count_download(self, media: EpisodeMedia) -> None:
        """One more download of the episode today (analytics "episode"/"downloads")."""
        await self._analytics.record(EPISODE, media.episode_id, DOWNLOADS)

    async def _build(self, podcast_id: uuid.UUID, now: datetime) -> CachedFeed:
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            podcast = await queries.podcast(conn, podcast_id)
            state = await queries.feed_state(conn, podcast_id, now)
            episodes = await queries.episodes(conn, podcast_id, now)
        if podcast is None or state is None:
            raise podcast_not_found()
        body = render_feed(
            self._channel(podcast, state.changed_at), [self._item(e) for e in episodes]
        )
        expires_at = now + FEED_TTL
        if state.next_publication is not None:
            expires_at = min(expires_at, state.next_publication)
        return CachedFeed(
            body=body,
            etag=f'"{hashlib.sha256(body).hexdigest()[:40]}"',
            last_modified=state.changed_at,
            owner_id=podcast.owner_id,
            paywalled=podcast.monetization_enabled
            or any(e.monetization_required for e in episodes),
            expires_at=expires_at,
        )

    def _channel(self, row: PodcastRow, changed_at: datetime) -> Channel:
        return Channel(
            title=row.title,
            description=row.description,
            link=self._links.podcast(row.podcast_id),
            self_url=self._links.custom_feed(row) or self._links.feed(row.podcast_id),
            language=row.language,
            author=row.author,
            image_url=row.image_url,
            category=row.category,
            explicit=row.explicit,
            podcast_type=row.podcast_type,
            owner_name=row.owner_name,
            owner_email=row.owner_email,
            guid=row.feed_guid,
            last_build=changed_at,
        )

    def _item(self, row: EpisodeRow) -> Item:
        return Item(
            guid=str(row.episode_id),
            title=row.title,
            description=row.description,
            enclosure_url=self._links.enclosure(row),
            length=row.media_size_bytes,
            published=row.publication_date,
            duration_seconds=row.duration_seconds,
            episode_number=row.episode_number,
            season=row.season,
            episode_type=row.episode_type,
            explicit=row.explicit,
        )


DELIVERY = web.AppKey("podcast_delivery", DeliveryService)
