"""What podcast apps fetch: the feed (backlog US-4.6) and episode media.

The feed is rendered from one consistent read of the podcast and its published episodes,
then cached (`FeedCache`) until the next change, `FEED_TTL`, or the next scheduled
episode's publication — whichever comes first. Its ETag is a hash of the body and its
Last-Modified the last change of its content, so polling apps get cheap 304s.

The cached feed is the one at the API's own URL. Served at the podcast's custom domain, its
upload enclosures move to `https://{domain}/episodes/{id}/media.mp3`; served through a
private feed URL (`?grant=`, `control.podcasts.grants`), every enclosure of ours carries the
grant, so the app that cannot send a token can play what the feed lists. Both are
`relocate`d from the cached body (no database read) and get their own ETag.

A grant that is genuine but no longer speaks for its user (expired, issued before the
account signed out everywhere, account deleted) is refused behind the paywall (403, with
where to get a new URL); on a free feed or episode it is ignored and the caller gets what
anyone gets, so a podcast app subscribed to a free feed keeps working. A forged grant is
always refused."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiohttp import web

from control import access
from control.access import check_paywall, is_privileged
from control.accounts import GONE, AccountGate
from control.analytics.service import AnalyticsService
from control.grants import Grantees, Lapse
from control.monetization.service import PaywallService
from control.podcasts import queries
from control.podcasts.feed import Channel, Item, relocate, render_feed
from control.podcasts.feedcache import FEED_TTL, CachedFeed, FeedCache
from control.podcasts.grants import FeedGrants
from control.podcasts.queries import EpisodeRow, PodcastRow
from control.podcasts.schemas import PrivateFeedUrl
from control.podcasts.uploads import EpisodeUploads
from control.podcasts.views import Links, custom_feed_url, custom_media_url
from control.security import Principal
from control.users import queries as users
from mediaserver.clock import Clock, utcnow
from mediaserver.config import Settings
from mediaserver.crypto import UrlSigner
from mediaserver.errors import Forbidden, Gone, NotFound, ServiceError, Unauthenticated

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
    #: Only for whoever asked: behind the paywall, or not yet published (owner, admins).
    #: Shared caches must not keep it.
    private: bool = False
    #: Access was decided by a `?grant=` in the URL rather than by `Authorization`.
    via_grant: bool = False


@dataclass(frozen=True, slots=True)
class ServedFeed:
    """The feed as one request gets it: the cached body, or that body `relocate`d for a
    custom domain or a grant (rendered only when sent, so a 304 costs nothing)."""

    cached: CachedFeed
    etag: str
    #: Only for whoever asked (behind the paywall, or through a private URL).
    private: bool
    self_url: str | None = None  # None: served as cached
    our_media: str = ""  # this server's enclosures start with it (`Links.media`)
    media_host: str | None = None  # the custom domain the enclosures move to
    query: str = ""  # `?grant=…` for this server's enclosures

    @property
    def last_modified(self) -> datetime:
        return self.cached.last_modified

    async def body(self) -> bytes:
        if self.self_url is None:
            return self.cached.body

        def enclosure(guid: str, url: str) -> str:
            if url != f"{self.our_media}{guid}/media.mp3":
                return url  # a free external episode's own URL
            if self.media_host is not None:
                url = custom_media_url(self.media_host, guid)
            return url + self.query

        # Parsing and writing a long feed takes milliseconds: not on the event loop.
        return await asyncio.to_thread(relocate, self.cached.body, self.self_url, enclosure)


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
        *,
        signer: UrlSigner,
        accounts: AccountGate,
    ) -> None:
        self._pool = pool
        self._cache = cache
        self._paywall = paywall
        self._analytics = analytics
        self._links = Links(settings.base_url)
        self._uploads = uploads
        self._clock = clock
        self._grants = FeedGrants(signer, settings.podcast_feed_grant_days, clock)
        self._grantees = Grantees(pool, accounts)

    async def feed(
        self,
        principal: Principal | None,
        podcast_id: uuid.UUID,
        *,
        grant: str | None = None,
        at_custom_domain: bool = False,
    ) -> ServedFeed:
        """The podcast's feed, from the cache when fresh; 404 for an unknown podcast,
        403 behind the paywall (`control.access`). With a `grant`, the grant
        decides who asks (403 when it is not valid, or its user may no longer read; a
        lapsed grant of a free feed gets the public feed)."""
        feed = await self._cached(podcast_id)
        if grant is not None:
            principal, grant = await self._grantee(podcast_id, grant, feed.paywalled)
        await check_paywall(self._paywall, principal, feed.owner_id, feed.paywalled)
        private = feed.paywalled or grant is not None
        if grant is None and not at_custom_domain:
            return ServedFeed(feed, feed.etag, private)
        query = f"?grant={grant}" if grant is not None else ""
        host = feed.custom_domain if at_custom_domain else None
        self_url = self._links.canonical_feed(podcast_id, feed.custom_domain) + query
        variant = f"{feed.etag}|{self_url}|{host}|{query}".encode()
        etag = f'"{hashlib.sha256(variant).hexdigest()[:40]}"'
        our_media = f"{self._links.podcast(podcast_id)}/episodes/"
        return ServedFeed(feed, etag, private, self_url, our_media, host, query)

    async def private_feed_url(self, principal: Principal, podcast_id: uuid.UUID) -> PrivateFeedUrl:
        """The caller's private feed URL, for a caller who may read the feed (404/403
        otherwise, as for the feed itself)."""
        feed = await self._cached(podcast_id)
        await check_paywall(self._paywall, principal, feed.owner_id, feed.paywalled)
        live, cutoff = await users.token_state(self._pool, principal.user_id)
        if not live:
            raise Unauthenticated(GONE)
        grant, expires_at = self._grants.issue(podcast_id, principal.user_id, cutoff)
        query = f"?grant={grant}"
        custom = custom_feed_url(feed.custom_domain)
        return PrivateFeedUrl(
            feed_url=self._links.feed(podcast_id) + query,
            custom_feed_url=custom + query if custom else None,
            expires_at=expires_at,
        )

    async def media(
        self,
        principal: Principal | None,
        podcast_id: uuid.UUID,
        episode_id: uuid.UUID,
        grant: str | None = None,
    ) -> EpisodeMedia:
        """An episode's audio, for a caller past the paywall (or with a grant whose user
        is). Scheduled episodes are 404 until their publication date, except for the owner
        and admins."""
        podcast = await queries.podcast(self._pool, podcast_id)
        if podcast is None:
            raise await self._missing(podcast_id)
        episode = await queries.episode(self._pool, podcast_id, episode_id)
        if episode is None:
            raise access.EPISODE.not_found()
        paywalled = podcast.monetization_enabled or episode.monetization_required
        if grant is not None:
            principal, grant = await self._grantee(podcast_id, grant, paywalled)
        scheduled = episode.publication_date > self._clock()
        if scheduled and not is_privileged(principal, podcast.owner_id):
            raise access.EPISODE.not_found()
        await check_paywall(self._paywall, principal, podcast.owner_id, paywalled)
        private = paywalled or scheduled
        via_grant = grant is not None
        if episode.upload_id is None or self._uploads is None:
            url = episode.external_url
            if url is None:
                raise NotFound("The episode's media is not available on this server")
            return EpisodeMedia(episode_id, url, "", 0, "", episode.updated_at, private, via_grant)
        upload = await self._uploads.source(episode.upload_id)
        # An upload's source never changes: its id is a strong validator.
        etag = f'"{upload.upload_id.hex}"'
        return EpisodeMedia(
            episode_id,
            None,
            upload.source_key,
            upload.size_bytes,
            etag,
            upload.created_at,
            private,
            via_grant,
        )

    async def read(self, media: EpisodeMedia, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Bytes `start..end` (inclusive) of the episode's audio."""
        assert self._uploads is not None
        return await self._uploads.read(media.key, start, end)

    async def count_download(self, media: EpisodeMedia) -> None:
        """One more download of the episode today (analytics "episode"/"downloads")."""
        await self._analytics.record(EPISODE, media.episode_id, DOWNLOADS)

    async def _cached(self, podcast_id: uuid.UUID) -> CachedFeed:
        now = self._clock()
        feed, generation = await self._cache.get(podcast_id, now)
        if feed is None:
            feed = await self._build(podcast_id, now)
            await self._cache.put(podcast_id, feed, generation)
        return feed

    async def _grantee(
        self, podcast_id: uuid.UUID, grant: str, paywalled: bool
    ) -> tuple[Principal | None, str | None]:
        """Who the grant speaks for, and the grant to carry on (into the feed's
        enclosures). 403 when it is forged or for another podcast; when it has expired, was
        issued before the account signed out everywhere, or its account is gone, 403 behind
        the paywall and (None, None) — an anonymous caller — for free content."""
        found = self._grants.read(podcast_id, grant)
        if found is None:
            raise Forbidden(
                "This private feed URL is not valid (not for this podcast, or mistyped): "
                f"get a new one from GET /v1/podcasts/{podcast_id}/feed-url"
            )
        expired = found.expired(self._clock().timestamp())
        holder = None if expired else await self._grantees.principal(found.grantee)
        if isinstance(holder, Principal):
            return holder, grant
        if not paywalled:
            return None, None
        if expired:
            reason = "has expired"
        elif holder is Lapse.ACCOUNT_GONE:
            raise Forbidden("This private feed URL's account no longer exists")
        else:
            reason = "was signed out (the account's password was changed after it was issued)"
        raise Forbidden(
            f"This private feed URL {reason}: get a new one from "
            f"GET /v1/podcasts/{podcast_id}/feed-url"
        )

    async def _missing(self, podcast_id: uuid.UUID) -> ServiceError:
        """404, or 410 for a podcast taken down with its owner's account."""
        if await queries.gone_with_owner(self._pool, podcast_id):
            return Gone("This podcast was removed along with its owner's account")
        return access.PODCAST.not_found()

    async def _build(self, podcast_id: uuid.UUID, now: datetime) -> CachedFeed:
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            podcast = await queries.podcast(conn, podcast_id)
            state = await queries.feed_state(conn, podcast_id, now)
            episodes = await queries.episodes(conn, podcast_id, now)
        if podcast is None or state is None:
            raise await self._missing(podcast_id)
        paywalled = podcast.monetization_enabled
        body = render_feed(
            self._channel(podcast, state.changed_at),
            [self._item(e, paywalled) for e in episodes],
        )
        expires_at = now + FEED_TTL
        if state.next_publication is not None:
            expires_at = min(expires_at, state.next_publication)
        return CachedFeed(
            body=body,
            etag=f'"{hashlib.sha256(body).hexdigest()[:40]}"',
            last_modified=state.changed_at,
            owner_id=podcast.owner_id,
            paywalled=paywalled or any(e.monetization_required for e in episodes),
            expires_at=expires_at,
            custom_domain=podcast.custom_domain,
        )

    def _channel(self, row: PodcastRow, changed_at: datetime) -> Channel:
        return Channel(
            title=row.title,
            description=row.description,
            link=self._links.podcast(row.podcast_id),
            self_url=self._links.canonical_feed(row.podcast_id, row.custom_domain),
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

    def _item(self, row: EpisodeRow, podcast_paywalled: bool) -> Item:
        return Item(
            guid=str(row.episode_id),
            title=row.title,
            description=row.description,
            enclosure_url=self._links.enclosure(row, podcast_paywalled),
            length=row.media_size_bytes,
            published=row.publication_date,
            duration_seconds=row.duration_seconds,
            episode_number=row.episode_number,
            season=row.season,
            episode_type=row.episode_type,
            explicit=row.explicit,
        )


DELIVERY = web.AppKey("podcast_delivery", DeliveryService)
