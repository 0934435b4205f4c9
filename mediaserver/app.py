"""Builds the node's aiohttp application: settings → secrets → database → services → routes.

Resources with a lifetime (the database pool, Redis, later the relays and job workers)
are `cleanup_ctx` generators, so each is closed in reverse order on shutdown."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr
from redis.exceptions import RedisError

from control.accounts import ACCOUNTS, AccountGate
from control.analytics.service import ANALYTICS, PLAYLIST, STREAM, AnalyticsService
from control.api import Guard
from control.app import setup_control
from control.auth.passwords import PasswordHasher
from control.auth.service import AUTH, AuthService
from control.domains.service import CUSTOM_DOMAINS, DomainsService
from control.domains.verifier import StubVerifier
from control.health import HEALTH, HealthService
from control.monetization.payments import StubPaymentProvider
from control.monetization.service import MONETIZATION, PAYWALL, MonetizationService, PaywallService
from control.playlists.delivery import PLAYLIST_MEDIA, PlaylistMedia
from control.playlists.fetch import ExternalAudio
from control.playlists.service import PLAYLISTS, PlaylistsService
from control.podcasts.delivery import DELIVERY, DeliveryService
from control.podcasts.episodes import EPISODES, EpisodesService
from control.podcasts.external import ExternalMediaProbe
from control.podcasts.feedcache import FeedCache, MemoryFeedCache, RedisFeedCache
from control.podcasts.service import PODCASTS, PodcastsService
from control.podcasts.uploads import EpisodeUploads
from control.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from control.security import TokenCodec
from control.streams.grants import GRANTS, StreamGrants
from control.streams.heartbeats import HeartbeatStore, MemoryHeartbeatStore, RedisHeartbeatStore
from control.streams.probe import SourceProbe
from control.streams.service import STREAMS, StreamsService
from control.throttle import THROTTLE, Throttle
from control.uploads.service import UPLOADS, UploadsService
from control.urlguard import UrlGuard
from control.users.service import USERS, UsersService
from mediaserver.clock import Clock, utcnow
from mediaserver.cluster import Cluster
from mediaserver.config import SETTINGS, Settings
from mediaserver.crypto import SecretBox, UrlSigner
from mediaserver.db import create_pool, start_embedded
from mediaserver.demo import demo_context
from mediaserver.jobs import JOBS, JobQueue
from mediaserver.keys import Secrets, load_secrets
from mediaserver.metrics import METRICS, Metrics
from mediaserver.migrate import apply_migrations
from mediaserver.storage import ObjectStore, open_store
from relay.collector import RelayCollector
from relay.manager import RELAYS, RelayManager, RelayOptions
from relay.status import RelayControl

log = logging.getLogger(__name__)

POOL = web.AppKey("pool", asyncpg.Pool)
DATABASE_URL = web.AppKey("database_url", str)
LIMITER = web.AppKey("rate_limiter", RateLimiter)
STORE = web.AppKey("object_store", ObjectStore)
#: Seconds a Redis command may take before it fails (callers decide what failing means).
REDIS_TIMEOUT = 2.0
#: What failing to reach PostgreSQL, Redis or S3 raises (asyncpg, redis-py, aiobotocore).
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    RedisError,
    BotoCoreError,
    ClientError,
)


class StartupError(Exception):
    """Something the node needs could not be reached at start-up: one line for the
    operator (`mediaserver serve` prints it and exits 2), not a traceback."""


@asynccontextmanager
async def reaching(what: str, url: str | None) -> AsyncIterator[None]:
    """Turn a connection failure inside the block into a `StartupError` naming `what`."""
    try:
        yield
    except UNREACHABLE as exc:
        where = f" at {redact(url)}" if url else ""
        raise StartupError(f"cannot connect to {what}{where}: {exc or type(exc).__name__}") from exc


def redact(url: str) -> str:
    """`url` without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def build_app(
    settings: Settings,
    secrets: Secrets | None = None,
    clock: Clock = utcnow,
    relay: RelayControl | None = None,
) -> web.Application:
    """The whole node. `secrets`, `clock` and `relay` are injectable for tests."""
    secrets = secrets or load_secrets(settings)
    stream_keys = SecretBox(secrets.stream_key_secret)
    metrics = Metrics()
    app = web.Application(client_max_size=settings.max_json_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    grants = app[GRANTS] = StreamGrants(
        UrlSigner(secrets.stream_key_secret), settings.play_url_ttl_seconds, clock
    )
    codec = TokenCodec(
        secrets.jwt_private_pem,
        secrets.jwt_public_pem,
        settings.jwt_issuer,
        settings.access_token_ttl_seconds,
    )
    hasher = PasswordHasher(fast=settings.password_hash_profile == "fast")  # noqa: S105
    manager = None
    if relay is None:
        manager = relay = RelayManager(
            relay_options(settings), clock, owns=Cluster(settings.node_name).owns
        )
        app[RELAYS] = manager
        metrics.registry.register(RelayCollector(manager))

    async def database(app: web.Application) -> AsyncIterator[None]:
        async with reaching("DATABASE_URL", settings.database_url):
            url = settings.database_url or await start_embedded(settings.data_dir)
            app[DATABASE_URL] = url
            app[POOL] = await open_database(settings, url)
        yield
        await app[POOL].close()

    async def storage(app: web.Application) -> AsyncIterator[None]:
        async with reaching("STORAGE_URL", settings.effective_storage_url):
            app[STORE] = await open_object_store(settings)
        yield
        await app[STORE].close()

    async def services(app: web.Application) -> AsyncIterator[None]:
        redis = None
        if settings.redis_url:
            redis = aioredis.from_url(
                settings.redis_url,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
            async with reaching("REDIS_URL", settings.redis_url):
                await redis.ping()
            limiter: RateLimiter = RedisRateLimiter(redis)
        else:
            limiter = MemoryRateLimiter()
        app[LIMITER] = limiter
        throttle = app[THROTTLE] = Throttle(limiter, settings)
        pool = app[POOL]
        app[HEALTH] = HealthService(pool, redis, store=app[STORE])
        jobs = app[JOBS] = JobQueue(
            pool,
            listen=functools.partial(asyncpg.connect, app[DATABASE_URL]),
            workers=settings.job_workers,
            lease_seconds=settings.job_lease_seconds,
            backoff_seconds=settings.job_backoff_seconds,
        )
        app[UPLOADS] = UploadsService(pool, app[STORE], jobs, settings, clock)
        app[AUTH] = AuthService(
            pool, hasher, codec, throttle, timedelta(days=settings.refresh_token_ttl_days), clock
        )
        accounts = app[ACCOUNTS] = AccountGate(pool)
        app[USERS] = UsersService(pool, hasher, accounts, clock)
        app[MONETIZATION] = MonetizationService(pool, StubPaymentProvider(), clock)
        app[PAYWALL] = PaywallService(pool, clock)
        app[ANALYTICS] = AnalyticsService(pool, clock)
        verifier = StubVerifier(timedelta(seconds=settings.domain_verify_delay_seconds))
        domains = app[CUSTOM_DOMAINS] = DomainsService(pool, verifier, settings, clock, redis)
        feeds: FeedCache = RedisFeedCache(redis) if redis is not None else MemoryFeedCache()
        episode_uploads = EpisodeUploads(app[UPLOADS], app[STORE])
        media_probe = ExternalMediaProbe(UrlGuard(settings.allow_private_media_urls))
        app[PODCASTS] = PodcastsService(pool, domains, feeds, app[PAYWALL], settings, clock)
        app[EPISODES] = EpisodesService(pool, media_probe, feeds, episode_uploads, clock)
        app[UPLOADS].register_usage_check(app[EPISODES].upload_in_use)
        app[UPLOADS].register_after_delete(app[EPISODES].upload_deleted)
        app[DELIVERY] = DeliveryService(
            pool,
            feeds,
            app[PAYWALL],
            app[ANALYTICS],
            settings,
            episode_uploads,
            clock,
            signer=UrlSigner(secrets.stream_key_secret),
            accounts=accounts,
        )
        external_audio = ExternalAudio.for_settings(settings)
        app[PLAYLISTS] = PlaylistsService(
            pool,
            app[STORE],
            jobs,
            app[UPLOADS],
            external_audio,
            app[PAYWALL],
            settings.upload_hls_seconds,
            clock,
        )
        app[PLAYLIST_MEDIA] = PlaylistMedia(
            pool,
            app[STORE],
            app[UPLOADS],
            app[PAYWALL],
            app[ANALYTICS],
            UrlSigner(secrets.stream_key_secret),
            accounts,
            clock,
        )
        app[UPLOADS].register_usage_check(app[PLAYLISTS].upload_in_use)
        app[UPLOADS].register_after_delete(app[PLAYLISTS].upload_deleted)
        app[PLAYLISTS].on_change(app[PLAYLIST_MEDIA].forget)
        app[ANALYTICS].register_owner_lookup(PLAYLIST, app[PLAYLISTS].owner_of)
        probe = SourceProbe()
        heartbeats: HeartbeatStore = (
            RedisHeartbeatStore(redis) if redis is not None else MemoryHeartbeatStore()
        )
        app[STREAMS] = StreamsService(
            pool,
            stream_keys,
            probe,
            heartbeats,
            app[PAYWALL],
            app[ANALYTICS],
            relay,
            settings,
            clock,
            grants=grants,
            accounts=accounts,
        )
        app[ANALYTICS].register_owner_lookup(STREAM, app[STREAMS].owner_of)
        if manager is not None:
            manager.attach(app[STREAMS], settings.node_name)
            await manager.start_all(await app[STREAMS].enabled_sources())
        await app[ANALYTICS].start()  # buffered play counts: written every few seconds
        yield
        await app[ANALYTICS].close()  # and what is left, before the pool closes
        if manager is not None:
            await manager.close()
        await probe.close()
        await media_probe.close()
        await external_audio.close()
        await limiter.close()
        if redis is not None:
            await redis.aclose()

    async def job_workers(app: web.Application) -> AsyncIterator[None]:
        # After `services` (which register the job kinds), so stopped before them.
        await app[JOBS].start()
        yield
        await app[JOBS].close()

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(storage)
    app.cleanup_ctx.append(services)
    app.cleanup_ctx.append(job_workers)
    if settings.demo and manager is not None:
        app.cleanup_ctx.append(demo_context)
    if manager is not None:  # SIGTERM: end the never-ending MP3 responses first
        app.on_shutdown.append(manager.on_shutdown)
    guard = Guard(codec, secrets.relay_service_token)
    setup_control(app, settings, guard, metrics)
    return app


def relay_options(settings: Settings) -> RelayOptions:
    return RelayOptions(
        grace_seconds=settings.relay_grace_seconds,
        metaint=settings.icy_metaint,
        burst_bytes=settings.relay_burst_bytes,
        backlog_limit=settings.relay_listener_backlog_bytes,
        batch_seconds=settings.relay_batch_seconds,
        hls_segment_seconds=settings.hls_segment_seconds,
        heartbeat_seconds=settings.relay_heartbeat_seconds,
    )


async def open_database(settings: Settings, url: str | None = None) -> asyncpg.Pool:
    """Start the embedded server when no URL is set, migrate, and open the pool."""
    url = url or settings.database_url or await start_embedded(settings.data_dir)
    applied = await apply_migrations(url)
    if applied:
        log.info("migrations applied", extra={"migrations": applied})
    return await create_pool(url)


async def open_object_store(settings: Settings) -> ObjectStore:
    """The object store `STORAGE_URL` names (filesystem by default), opened."""
    return await open_store(
        settings.effective_storage_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        region=settings.aws_region,
        access_key=_secret(settings.aws_access_key_id),
        secret_key=_secret(settings.aws_secret_access_key),
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


@asynccontextmanager
async def admin_service(settings: Settings) -> AsyncIterator[AuthService]:
    """An `AuthService` outside a running node, for `mediaserver create-admin`."""
    secrets = load_secrets(settings)
    pool = await open_database(settings)
    try:
        codec = TokenCodec(
            secrets.jwt_private_pem,
            secrets.jwt_public_pem,
            settings.jwt_issuer,
            settings.access_token_ttl_seconds,
        )
        throttle = Throttle(MemoryRateLimiter(), settings)
        yield AuthService(
            pool, PasswordHasher(), codec, throttle, timedelta(days=settings.refresh_token_ttl_days)
        )
    finally:
        await pool.close()
