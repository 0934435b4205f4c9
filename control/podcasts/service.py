"""Podcast series: creation, the DJ's list, the public page, changes and deletion (backlog
US-4.1, US-4.2, US-11.2). Episodes are in `control.podcasts.episodes`, the feed and media
in `control.podcasts.delivery`; who may do what is in `control.access`."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

import asyncpg
from aiohttp import web

from control import access
from control.access import check_paywall, is_privileged
from control.domains.service import DomainsService
from control.monetization.service import PaywallService
from control.podcasts import queries
from control.podcasts.feed import feed_guid
from control.podcasts.feedcache import FeedCache
from control.podcasts.queries import PodcastRow
from control.podcasts.schemas import (
    NO_PODCASTS,
    PodcastCreated,
    PodcastIn,
    PodcastList,
    PodcastOut,
    PodcastUpdate,
    PodcastUpdated,
)
from control.podcasts.views import Links, podcast_out, podcast_summary
from control.schemas import PageQuery
from control.security import Principal
from mediaserver.clock import Clock, utcnow
from mediaserver.config import Settings
from mediaserver.db import Executor
from mediaserver.errors import Conflict


class PodcastsService:
    """Podcasts in PostgreSQL; every change drops the cached feed and, when the custom
    domain changes, the host routing entry."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        domains: DomainsService,
        cache: FeedCache,
        paywall: PaywallService,
        settings: Settings,
        clock: Clock = utcnow,
    ) -> None:
        self._pool = pool
        self._domains = domains
        self._cache = cache
        self._paywall = paywall
        self._links = Links(settings.base_url)
        self._clock = clock

    async def create(self, principal: Principal, body: PodcastIn) -> PodcastCreated:
        """Store the podcast (attaching its custom domain, if any) and return its feed URL."""
        now = self._clock()
        podcast_id = uuid.uuid4()
        feed_url = self._links.feed(podcast_id)
        row = PodcastRow(
            podcast_id=podcast_id,
            owner_id=principal.user_id,
            title=body.title,
            description=body.description,
            author=body.author,
            language=body.language,
            image_url=body.image_url,
            category=body.category,
            explicit=body.explicit,
            podcast_type=body.podcast_type,
            owner_name=body.owner_name or body.author,
            owner_email=body.owner_email or principal.email,
            custom_domain=body.custom_domain,
            monetization_enabled=body.monetization_enabled,
            feed_guid=feed_guid(feed_url),
            created_at=now,
            updated_at=now,
            deleted_at=None,
        )
        async with self._pool.acquire() as conn, conn.transaction():
            await _insert(conn, row)
            if row.custom_domain is not None:
                await self._domains.attach(conn, row.owner_id, row.custom_domain, podcast_id)
        await self._domains.hosts.invalidate(row.custom_domain)
        return PodcastCreated(podcast_id=podcast_id, rss_feed_url=feed_url)

    async def list_mine(self, principal: Principal, page: PageQuery) -> PodcastList:
        """The caller's podcasts, newest first."""
        rows, total = await queries.owned(self._pool, principal.user_id, page.per_page, page.offset)
        return PodcastList(
            podcasts=[podcast_summary(r, self._links) for r in rows],
            page=page.page,
            per_page=page.per_page,
            total=total,
            message=NO_PODCASTS if total == 0 else None,
        )

    async def detail(self, principal: Principal | None, podcast_id: uuid.UUID) -> PodcastOut:
        """US-4.2: the podcast and its episodes, newest first (scheduled ones only for the
        owner and admins); behind the paywall when the podcast is monetized."""
        row = await queries.podcast(self._pool, podcast_id)
        if row is None:
            raise access.PODCAST.not_found()
        await check_paywall(self._paywall, principal, row.owner_id, row.monetization_enabled)
        now = self._clock()
        privileged = is_privileged(principal, row.owner_id)
        episodes = await queries.episodes(self._pool, podcast_id, None if privileged else now)
        return podcast_out(row, episodes, self._links, now, privileged)

    async def update(
        self, principal: Principal, podcast_id: uuid.UUID, body: PodcastUpdate
    ) -> PodcastUpdated:
        """Change the fields sent; a new `custom_domain` must be a verified domain of the
        owner's (422) that no other podcast uses (409); null detaches it."""
        sent = body.changes()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await queries.podcast(conn, podcast_id, lock=True)
            if row is None:
                raise access.PODCAST.not_found()
            access.PODCAST.check_owner(principal, row.owner_id)
            new = replace(row, **sent)
            if new.custom_domain != row.custom_domain:
                if row.custom_domain is not None:
                    await self._domains.detach(conn, row.custom_domain)
                if new.custom_domain is not None:
                    await self._domains.attach(conn, row.owner_id, new.custom_domain, podcast_id)
            await _update(conn, new, self._clock())
        await self._changed(row, new)
        return PodcastUpdated(podcast_id=podcast_id, updated_fields=list(sent))

    async def delete(self, principal: Principal, podcast_id: uuid.UUID) -> None:
        """Soft delete: the page, the feed and the media answer 404; the domain is freed."""
        if not await self._delete(podcast_id, principal):
            raise access.PODCAST.not_found()

    async def owner_deleted(self, owner_id: uuid.UUID) -> None:
        """The owner's account was deleted: its podcasts go too (their feeds and media
        answer 410, so podcast apps drop them), their domains are freed."""
        for podcast_id in await queries.owned_ids(self._pool, owner_id):
            await self._delete(podcast_id, None)

    async def _delete(self, podcast_id: uuid.UUID, principal: Principal | None) -> bool:
        """False when there is no such podcast (any more)."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await queries.podcast(conn, podcast_id, lock=True)
            if row is None:
                return False
            if principal is not None:
                access.PODCAST.check_owner(principal, row.owner_id)
            if row.custom_domain is not None:
                await self._domains.detach(conn, row.custom_domain)
            await queries.delete_podcast(conn, podcast_id, self._clock())
        await self._changed(row, None)
        return True

    async def _changed(self, old: PodcastRow, new: PodcastRow | None) -> None:
        await self._cache.invalidate(old.podcast_id)
        if new is None or new.custom_domain != old.custom_domain:  # the routing changed
            await self._domains.hosts.invalidate(old.custom_domain)
            if new is not None:
                await self._domains.hosts.invalidate(new.custom_domain)


async def _insert(conn: Executor, row: PodcastRow) -> None:
    try:
        await queries.insert_podcast(conn, row)
    except asyncpg.UniqueViolationError:
        raise _domain_taken(row.custom_domain) from None


async def _update(conn: Executor, row: PodcastRow, now: datetime) -> None:
    try:
        if await queries.update_podcast(conn, row, now) is None:
            raise access.PODCAST.not_found()
    except asyncpg.UniqueViolationError:
        raise _domain_taken(row.custom_domain) from None


def _domain_taken(hostname: str | None) -> Conflict:
    return Conflict(f"Custom domain {hostname} is already in use")


PODCASTS = web.AppKey("podcasts_service", PodcastsService)
