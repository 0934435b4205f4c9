"""The node's services, one small `cleanup_ctx` per area, in dependency order.

`mediaserver.app.build_app` lists them after the connections it opens (the database,
the object store, Redis), so aiohttp starts them in that order and closes them in
reverse: an area's services are gone before the services and connections it was built
on. Areas hand each other what they built only through the typed keys (`app[UPLOADS]`,
`app[PAYWALL]`, …); what `build_app` makes before the loop runs (the clock, the token
codec, the signers, the relay control) comes in under keys too.

The keys of the connections live here rather than in `mediaserver.app`, so that imports
run one way: `app` → `wiring` → the services."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from control.accounts import ACCOUNTS, AccountGate
from control.analytics.service import ANALYTICS, PLAYLIST, STREAM, AnalyticsService
from control.auth.passwords import PasswordHasher
from control.auth.recovery import ACCOUNT_MAIL, AccountMail
from control.auth.service import AUTH, AuthService
from control.catalog.service import CATALOG, CatalogService
from control.domains.dns import DnsVerifier
from control.domains.service import CUSTOM_DOMAINS, DomainsService
from control.domains.verifier import DomainVerifier, StubVerifier
from control.forwarded import CLIENT_ADDRESS
from control.health import HEALTH, HealthService
from control.monetization.payments import PaymentProvider, StubPaymentProvider
from control.monetization.service import MONETIZATION, PAYWALL, MonetizationService, PaywallService
from control.nowplaying.events import EventBus
from control.nowplaying.service import NOWPLAYING, NowPlayingService
from control.pages.service import PAGES, PagesService
from control.playlists.delivery import PLAYLIST_MEDIA, PlaylistMedia
from control.playlists.fetch import ExternalAudio
from control.playlists.service import PLAYLISTS, PlaylistsService
from control.podcasts.delivery import DELIVERY, DeliveryService
from control.podcasts.episodes import EPISODES, EpisodesService
from control.podcasts.external import ExternalMediaProbe
from control.podcasts.feedcache import FeedCache, MemoryFeedCache, RedisFeedCache
from control.podcasts.service import PODCASTS, PodcastsService
from control.podcasts.uploads import EpisodeUploads
from control.profiles.service import PROFILES, ProfilesService
from control.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from control.security import TokenCodec
from control.streams.grants import GRANTS
from control.streams.heartbeats import HeartbeatStore, MemoryHeartbeatStore, RedisHeartbeatStore
from control.streams.ingest import PushIngest
from control.streams.probe import SourceProbe
from control.streams.service import STREAMS, StreamsService
from control.throttle import THROTTLE, Throttle
from control.tracks.service import TRACKS, TracksService
from control.uploads.service import UPLOADS, UploadsService
from control.urlguard import UrlGuard
from control.users.service import USERS, UsersService
from mediaserver.clock import Clock
from mediaserver.cluster import (
    CLUSTER,
    ClusterCollector,
    LocalCluster,
    Member,
    RedisCluster,
    RedisPositions,
)
from mediaserver.config import SETTINGS, Settings
from mediaserver.crypto import SecretBox, UrlSigner
from mediaserver.jobs import JOBS, JobQueue
from mediaserver.mail import mailer_for
from mediaserver.metrics import METRICS
from mediaserver.storage import ObjectStore
from relay.ingest import IngestServer
from relay.manager import RELAYS
from relay.status import RelayControl

POOL = web.AppKey("pool", asyncpg.Pool)
DATABASE_URL = web.AppKey("database_url", str)
STORE = web.AppKey("object_store", ObjectStore)
#: The Redis client, or None when `REDIS_URL` is unset (then everything stays in memory).
REDIS: web.AppKey[aioredis.Redis | None] = web.AppKey("redis")
LIMITER = web.AppKey("rate_limiter", RateLimiter)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
CODEC = web.AppKey("token_codec", TokenCodec)
#: Signs the short-lived grants of media URLs (podcast enclosures, playlist segments).
SIGNER = web.AppKey("url_signer", UrlSigner)
#: Encrypts stream keys at rest.
STREAM_KEYS = web.AppKey("stream_keys", SecretBox)
#: What the streams service drives: the node's relay manager, or a test's stand-in.
RELAY_CONTROL = web.AppKey("relay_control", RelayControl)
#: The relays' last heartbeats (Redis, or this process).
HEARTBEATS = web.AppKey("heartbeats", HeartbeatStore)

log = logging.getLogger(__name__)


async def rate_limiter(app: web.Application) -> AsyncIterator[None]:
    """`LIMITER`: shared by every node through Redis when there is one, else in memory.
    Closed before the Redis client it uses (which it leaves open)."""
    redis = app[REDIS]
    app[LIMITER] = RedisRateLimiter(redis) if redis is not None else MemoryRateLimiter()
    yield
    await app[LIMITER].close()


async def health(app: web.Application) -> AsyncIterator[None]:
    """`HEALTH`: reports on the three connections."""
    app[HEALTH] = HealthService(app[POOL], app[REDIS], store=app[STORE])
    yield


async def draining(app: web.Application) -> None:
    """aiohttp `on_shutdown`: from now on `/readyz` answers 503."""
    if HEALTH in app:
        app[HEALTH].draining = True


async def accounts(app: web.Application) -> AsyncIterator[None]:
    """Who may sign in and what they may do: the login throttle, the account gate, the
    account mails (on the job queue), auth, users, and monetization with its paywall."""
    pool, settings, clock = app[POOL], app[SETTINGS], app[CLOCK]
    hasher = PasswordHasher(fast=settings.password_hash_profile == "fast")  # noqa: S105
    throttle = app[THROTTLE] = Throttle(app[LIMITER], settings)
    app[CLIENT_ADDRESS] = throttle.client_address
    refresh_ttl = timedelta(days=settings.refresh_token_ttl_days)
    app[ACCOUNTS] = AccountGate(pool, require_verified=settings.require_verified_email)
    smtp_url = settings.smtp_url.get_secret_value() if settings.smtp_url else None
    mailer = mailer_for(smtp_url, settings.sender)
    mail = app[ACCOUNT_MAIL] = AccountMail(
        pool, app[JOBS], mailer, hasher, throttle, app[ACCOUNTS], settings, clock
    )
    app[AUTH] = AuthService(pool, hasher, app[CODEC], throttle, refresh_ttl, clock, mail)
    app[USERS] = UsersService(pool, hasher, app[ACCOUNTS], clock)
    payments = payment_provider(settings)
    app[MONETIZATION] = MonetizationService(pool, payments, clock)
    app[PAYWALL] = PaywallService(pool, clock, base_url=settings.base_url)
    app[USERS].on_deleted(app[MONETIZATION].account_deleted)
    app[PROFILES] = ProfilesService(pool, app[STORE], settings.base_url, clock)
    app[USERS].on_deleted(app[PROFILES].account_deleted)
    yield
    if payments is not None:
        await payments.close()


def payment_provider(settings: Settings) -> PaymentProvider | None:
    """What `PAYMENT_PROVIDER` names; None (the routes answer 503) when it is unset."""
    if settings.payment_provider == "stub":
        log.warning("PAYMENT_PROVIDER=stub: subscriptions are granted without any payment")
        return StubPaymentProvider()
    if settings.payment_provider == "stripe":
        from control.monetization.stripe_payments import StripeProvider

        assert settings.stripe_api_key is not None  # checked by Settings
        assert settings.stripe_webhook_secret is not None
        return StripeProvider(
            settings.stripe_api_key.get_secret_value(),
            settings.stripe_webhook_secret.get_secret_value(),
            settings.stripe_api_base,
        )
    return None


def domain_verifier(settings: Settings) -> DomainVerifier | None:
    """What `DOMAIN_VERIFIER` names; None (the routes answer 503) when it is unset."""
    if settings.domain_verifier == "stub":
        log.warning("DOMAIN_VERIFIER=stub: every custom domain is verified without a check")
        return StubVerifier(timedelta(seconds=settings.domain_verify_delay_seconds))
    if settings.domain_verifier == "dns":
        return DnsVerifier(settings.dns_resolver)
    return None


async def analytics(app: web.Application) -> AsyncIterator[None]:
    """`ANALYTICS`: buffered play counts, written every few seconds. Closed after every
    area that counts, so what is left is written; and before the pool closes."""
    app[ANALYTICS] = AnalyticsService(app[POOL], app[CLOCK])
    await app[ANALYTICS].start()
    yield
    await app[ANALYTICS].close()


async def job_queue(app: web.Application) -> AsyncIterator[None]:
    """`JOBS`: the queue the next areas (accounts' mails first) register their job kinds on.
    Its workers start in
    `job_workers`, once every kind is registered."""
    settings = app[SETTINGS]
    app[JOBS] = JobQueue(
        app[POOL],
        listen=functools.partial(asyncpg.connect, app[DATABASE_URL]),
        workers=settings.job_workers,
        lease_seconds=settings.job_lease_seconds,
        backoff_seconds=settings.job_backoff_seconds,
    )
    yield


async def uploads(app: web.Application) -> AsyncIterator[None]:
    """`UPLOADS`: audio files in the object store, transcoded by a job. Podcasts and
    playlists (next) register what uses an upload."""
    settings = app[SETTINGS]
    app[UPLOADS] = UploadsService(
        app[POOL], app[STORE], app[JOBS], settings, app[CLOCK], accounts=app[ACCOUNTS]
    )
    yield


async def tracks(app: web.Application) -> AsyncIterator[None]:
    """`TRACKS`: the track catalog, built on uploads (a track is an upload): its
    `track.process` job kind, its media."""
    settings = app[SETTINGS]
    app[TRACKS] = TracksService(
        app[POOL],
        app[STORE],
        app[JOBS],
        app[UPLOADS],
        settings,
        app[CLOCK],
        accounts=app[ACCOUNTS],
    )
    app[USERS].on_deleted(app[TRACKS].owner_deleted)
    yield


async def catalog(app: web.Application) -> AsyncIterator[None]:
    """`CATALOG`: the listing and search of tracks and the directories (reads only; it
    asks the database once which search extensions it has)."""
    app[CATALOG] = await CatalogService.open(app[POOL])
    yield


async def podcasts(app: web.Application) -> AsyncIterator[None]:
    """Custom domains, the feed cache, podcasts, episodes (which may use uploads) and
    their delivery."""
    pool, settings, clock, redis = app[POOL], app[SETTINGS], app[CLOCK], app[REDIS]
    verifier = domain_verifier(settings)
    domains = app[CUSTOM_DOMAINS] = DomainsService(pool, verifier, settings, clock, redis)
    feeds: FeedCache = RedisFeedCache(redis) if redis is not None else MemoryFeedCache()
    episode_uploads = EpisodeUploads(app[UPLOADS], app[STORE])
    media_probe = ExternalMediaProbe(UrlGuard(settings.allow_private_media_urls))
    app[PODCASTS] = PodcastsService(pool, domains, feeds, app[PAYWALL], settings, clock)
    app[EPISODES] = EpisodesService(pool, media_probe, feeds, episode_uploads, clock)
    app[UPLOADS].register_usage_check(app[EPISODES].upload_in_use)
    app[UPLOADS].register_after_delete(app[EPISODES].upload_deleted)
    app[USERS].on_deleted(app[PODCASTS].owner_deleted)
    app[DELIVERY] = DeliveryService(
        pool,
        feeds,
        app[PAYWALL],
        app[ANALYTICS],
        settings,
        episode_uploads,
        clock,
        signer=app[SIGNER],
        accounts=app[ACCOUNTS],
    )
    yield
    await media_probe.close()


async def playlists(app: web.Application) -> AsyncIterator[None]:
    """Playlists (of uploads and external tracks) and their media."""
    pool, store, clock = app[POOL], app[STORE], app[CLOCK]
    external_audio = ExternalAudio.for_settings(app[SETTINGS])
    hls_seconds = app[SETTINGS].upload_hls_seconds
    app[PLAYLISTS] = PlaylistsService(
        pool, store, app[JOBS], app[UPLOADS], external_audio, app[PAYWALL], hls_seconds, clock
    )
    app[PLAYLIST_MEDIA] = PlaylistMedia(
        pool,
        store,
        app[UPLOADS],
        app[PAYWALL],
        app[ANALYTICS],
        app[SIGNER],
        app[ACCOUNTS],
        clock,
    )
    app[UPLOADS].register_usage_check(app[PLAYLISTS].upload_in_use)
    app[UPLOADS].register_after_delete(app[PLAYLISTS].upload_deleted)
    app[PLAYLISTS].on_change(app[PLAYLIST_MEDIA].forget)
    app[USERS].on_deleted(app[PLAYLISTS].owner_deleted)
    app[ANALYTICS].register_owner_lookup(PLAYLIST, app[PLAYLISTS].owner_of)
    yield
    await external_audio.close()


async def streams(app: web.Application) -> AsyncIterator[None]:
    """`STREAMS`: live streams, their source probe and their relays' heartbeats."""
    redis = app[REDIS]
    probe = SourceProbe(UrlGuard(app[SETTINGS].allow_private_media_urls))
    heartbeats: HeartbeatStore = (
        RedisHeartbeatStore(redis) if redis is not None else MemoryHeartbeatStore()
    )
    app[HEARTBEATS] = heartbeats
    app[STREAMS] = StreamsService(
        app[POOL],
        app[STREAM_KEYS],
        probe,
        heartbeats,
        app[PAYWALL],
        app[ANALYTICS],
        app[RELAY_CONTROL],
        app[SETTINGS],
        app[CLOCK],
        grants=app[GRANTS],
        accounts=app[ACCOUNTS],
    )
    app[ANALYTICS].register_owner_lookup(STREAM, app[STREAMS].owner_of)
    app[USERS].on_disabled(app[STREAMS].owner_disabled)
    app[USERS].on_deleted(app[STREAMS].owner_deleted)
    yield
    await probe.close()  # after the relays (next) have stopped


async def nowplaying(app: web.Application) -> AsyncIterator[None]:
    """`NOWPLAYING`: song history, the stations on air and their live feeds (events
    through Redis when there is one). The relays (next) report title changes to it."""
    bus = EventBus(app[REDIS])
    await bus.start()
    service = app[NOWPLAYING] = NowPlayingService(
        app[POOL], app[STREAMS], app[HEARTBEATS], bus, app[SETTINGS].base_url, app[CLOCK]
    )
    app[STREAMS].on_heartbeat(service.heartbeat)
    app[STREAMS].on_off_air(service.off_air)
    yield
    await bus.close()


async def pages(app: web.Application) -> AsyncIterator[None]:
    """`PAGES`: what the HTML pages show, read from the services that own each part."""
    app[PAGES] = PagesService(
        app[STREAMS], app[NOWPLAYING], app[PROFILES], app[MONETIZATION], app[SETTINGS].base_url
    )
    yield


async def end_feeds(app: web.Application) -> None:
    """aiohttp `on_shutdown`: end the live feeds' responses (they never end by themselves)."""
    if NOWPLAYING in app:
        app[NOWPLAYING].bus.end_all()


async def cluster(app: web.Application) -> AsyncIterator[None]:
    """`CLUSTER` and `RELAY_CONTROL` (before the streams service, which drives the relays
    through it): with Redis, this node's part in the cluster, which decides the streams it
    relays; without, the node alone relays every stream. Only with the node's own relay
    manager (a test that injects a stand-in has neither)."""
    settings, redis, manager = app[SETTINGS], app[REDIS], app[RELAYS]
    wait = settings.relay_connect_wait_seconds
    if redis is None:
        log.info("no REDIS_URL: this node runs alone and relays every enabled stream")
        app[CLUSTER] = LocalCluster(settings.node_name, manager, wait)
        app[RELAY_CONTROL] = manager
        yield
        return
    node_url = settings.node_url or settings.base_url
    if settings.node_url is None:
        log.warning(
            "clustered without MEDIASERVER_NODE_URL: listeners redirected to this node "
            "get %s, which only works where that address reaches this very node",
            node_url,
        )
    positions = manager.positions = RedisPositions(redis)
    me = Member(settings.node_name, settings.peer_url, node_url)
    node = RedisCluster(
        redis,
        manager,
        me,
        lease_seconds=settings.cluster_lease_seconds,
        wait_seconds=wait,
        positions=positions,
        target_duration=settings.hls_segment_seconds,
    )
    app[CLUSTER] = app[RELAY_CONTROL] = node
    collector = ClusterCollector(node)
    app[METRICS].registry.register(collector)
    yield
    app[METRICS].registry.unregister(collector)


async def relays(app: web.Application) -> AsyncIterator[None]:
    """The node's own relay manager (absent when a test injects a stand-in): starts the
    relays of the streams this node relays, and stops them all before the probe and Redis
    close (leaving the cluster first, so other nodes take them over)."""
    manager, node = app[RELAYS], app[CLUSTER]
    manager.attach(app[STREAMS], app[SETTINGS].node_name, titles=app[NOWPLAYING].title_changed)
    if isinstance(node, RedisCluster):
        await node.start(app[STREAMS])
    else:
        await manager.start_all(await app[STREAMS].enabled_sources())
    yield
    if isinstance(node, RedisCluster):
        await node.close()
    await manager.close()


async def ingest(app: web.Application) -> AsyncIterator[None]:
    """With `INGEST_PORT`: DJs' encoders push audio there (`relay.ingest`). Closed before
    the relays, so an encoder's stream ends as a pulled source's does."""
    settings = app[SETTINGS]
    if settings.ingest_port is None:
        yield
        return
    server = IngestServer(PushIngest(app[STREAMS], app[RELAYS], app[CLUSTER]))
    await server.start(settings.host, settings.ingest_port)
    log.info("ingest listening", extra={"host": settings.host, "port": settings.ingest_port})
    yield
    await server.close()


async def leave_cluster(app: web.Application) -> None:
    """aiohttp `on_shutdown` (SIGTERM), before the MP3 responses are ended: hand this
    node's streams over, so the listeners who reconnect find them on another node."""
    node = app.get(CLUSTER)
    if isinstance(node, RedisCluster):
        await node.leave()


async def job_workers(app: web.Application) -> AsyncIterator[None]:
    """After every area that registers a job kind, so the workers stop before the
    services their jobs call."""
    await app[JOBS].start()
    yield
    await app[JOBS].close()
