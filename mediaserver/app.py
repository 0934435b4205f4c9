"""Builds the node's aiohttp application: settings → secrets → connections → services → routes.

Everything with a lifetime is a `cleanup_ctx` generator, so each is closed in reverse order
on shutdown: the connections (the database pool, the object store, Redis) are opened here,
each failing as one `StartupError` line; the services are built per area in
`mediaserver.wiring`."""

from __future__ import annotations

import asyncio
import contextlib
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

from control.api import Guard
from control.app import setup_control
from control.auth.passwords import PasswordHasher
from control.auth.service import AuthService
from control.connection import handler_args
from control.ratelimit import MemoryRateLimiter
from control.security import TokenCodec
from control.streams.grants import GRANTS, StreamGrants
from control.throttle import Throttle
from control.urlguard import public_address
from mediaserver.clock import Clock, utcnow
from mediaserver.config import SETTINGS, Settings
from mediaserver.crypto import SecretBox, UrlSigner
from mediaserver.db import create_pool, start_embedded
from mediaserver.demo import demo_context
from mediaserver.keys import Secrets, load_secrets
from mediaserver.metrics import METRICS, Metrics
from mediaserver.migrate import apply_migrations
from mediaserver.storage import ObjectStore, StoreError, open_store
from mediaserver.wiring import (
    CLOCK,
    CODEC,
    DATABASE_URL,
    POOL,
    REDIS,
    RELAY_CONTROL,
    SIGNER,
    STORE,
    STREAM_KEYS,
    accounts,
    analytics,
    catalog,
    cluster,
    draining,
    end_feeds,
    health,
    ingest,
    job_queue,
    job_workers,
    leave_cluster,
    nowplaying,
    pages,
    playlists,
    podcasts,
    rate_limiter,
    relays,
    streams,
    tracks,
    uploads,
)
from relay.collector import RelayCollector
from relay.manager import RELAYS, RelayManager, RelayOptions
from relay.status import RelayControl

log = logging.getLogger(__name__)

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
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_json_body_bytes, handler_args=handler_args(settings)
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[CLOCK] = clock
    app[GRANTS] = StreamGrants(
        UrlSigner(secrets.stream_key_secret), settings.play_url_ttl_seconds, clock
    )
    app[SIGNER] = UrlSigner(secrets.stream_key_secret)
    app[STREAM_KEYS] = SecretBox(secrets.stream_key_secret)
    codec = app[CODEC] = TokenCodec(
        secrets.jwt_private_pem,
        secrets.jwt_public_pem,
        settings.jwt_issuer,
        settings.access_token_ttl_seconds,
    )
    manager = None
    if relay is None:
        manager = RelayManager(relay_options(settings), clock)
        app[RELAYS] = manager
        metrics.registry.register(RelayCollector(manager))
    else:
        app[RELAY_CONTROL] = relay

    # Started in this order, closed in reverse: each area after what it is built on.
    app.cleanup_ctx.extend((database, storage, redis_client, rate_limiter, health))
    app.cleanup_ctx.extend((job_queue, accounts, analytics, uploads, tracks))
    app.cleanup_ctx.extend((podcasts, playlists, catalog))
    app.cleanup_ctx.extend(
        (streams, nowplaying) if manager is None else (cluster, streams, nowplaying, relays, ingest)
    )
    app.cleanup_ctx.append(pages)
    app.on_shutdown.append(draining)  # SIGTERM: /readyz says so to keep-alive probes
    app.on_shutdown.append(end_feeds)  # the live feeds' responses end now
    if manager is not None:
        app.on_shutdown.append(leave_cluster)  # SIGTERM: hand the streams over first,
        app.on_shutdown.append(manager.on_shutdown)  # then end the MP3 responses
    app.cleanup_ctx.append(job_workers)
    if settings.demo and manager is not None:
        app.cleanup_ctx.append(demo_context)
    guard = Guard(codec, secrets.relay_service_token)
    setup_control(app, settings, guard, metrics)
    return app


async def database(app: web.Application) -> AsyncIterator[None]:
    """`POOL` on `DATABASE_URL` (or the embedded server), migrated. Closed last."""
    settings = app[SETTINGS]
    async with reaching("DATABASE_URL", settings.database_url):
        url = settings.database_url or await start_embedded(settings.data_dir)
        app[DATABASE_URL] = url
        app[POOL] = await open_database(settings, url)
    yield
    await app[POOL].close()


async def storage(app: web.Application) -> AsyncIterator[None]:
    """`STORE`: the object store `STORAGE_URL` names."""
    settings = app[SETTINGS]
    async with reaching("STORAGE_URL", settings.effective_storage_url):
        app[STORE] = await open_object_store(settings)
    sweeping = None
    if settings.store_sweep_interval_seconds > 0:
        sweeping = asyncio.create_task(
            sweep_store(app[STORE], app[CLOCK], settings), name="store-sweep"
        )
    yield
    if sweeping is not None:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
    await app[STORE].close()


async def sweep_store(store: ObjectStore, clock: Clock, settings: Settings) -> None:
    """At start-up, then every `STORE_SWEEP_INTERVAL_SECONDS`: remove what interrupted
    writes left in the store (`ObjectStore.sweep`: a node killed mid-upload, a refused or
    aborted upload) once older than `STORE_ORPHAN_AGE_SECONDS`. Every node may sweep the
    same store: removing an orphan twice is harmless."""
    age = timedelta(seconds=settings.store_orphan_age_seconds)
    while True:
        try:
            removed = await store.sweep(clock() - age)
        except StoreError as exc:
            log.warning("object store sweep failed: %s", exc)
        else:
            if removed:
                log.info("object store sweep removed %d orphans", removed)
        await asyncio.sleep(settings.store_sweep_interval_seconds)


async def redis_client(app: web.Application) -> AsyncIterator[None]:
    """`REDIS` when `REDIS_URL` is set (else None), reached before anything uses it."""
    settings = app[SETTINGS]
    if not settings.redis_url:
        app[REDIS] = None
        yield
        return
    redis = app[REDIS] = aioredis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
    )
    async with reaching("REDIS_URL", settings.redis_url):
        await redis.ping()
    yield
    await redis.aclose()


def relay_options(settings: Settings) -> RelayOptions:
    return RelayOptions(
        grace_seconds=settings.relay_grace_seconds,
        metaint=settings.icy_metaint,
        burst_bytes=settings.relay_burst_bytes,
        backlog_limit=settings.relay_listener_backlog_bytes,
        batch_seconds=settings.relay_batch_seconds,
        hls_segment_seconds=settings.hls_segment_seconds,
        heartbeat_seconds=settings.relay_heartbeat_seconds,
        source_address=None if settings.allow_private_media_urls else public_address,
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
