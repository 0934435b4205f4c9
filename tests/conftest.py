"""Shared fixtures: a real PostgreSQL database per test run, the app on a loopback server,
and helpers to get tokens the way a client would (register + login)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from mediaserver.app import build_app
from mediaserver.config import Settings, load_settings
from mediaserver.keys import Secrets, load_secrets
from mediaserver.migrate import apply_migrations

# `fake_servers`; `s3_endpoint` (moto's S3 server) and `aio_session`
pytest_plugins = ["tests.sources", "tests.s3"]

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 1):
            return True
    except OSError:
        return False


def _server_url(tmp_root: Path) -> str:
    """TEST_DATABASE_URL / DATABASE_URL, else the local server, else embedded PostgreSQL."""
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    if _reachable(LOCAL_POSTGRES):
        return LOCAL_POSTGRES
    from mediaserver.db import start_embedded

    return asyncio.run(start_embedded(tmp_root))


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _server_url(tmp_path_factory.mktemp("embedded"))


@pytest.fixture(scope="session")
def make_database(pg_server_url: str) -> Iterator[Callable[[], str]]:
    """Creates fresh, empty databases on the test server; all are dropped at the end."""
    created: list[str] = []

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(pg_server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def make() -> str:
        name = f"mediaserver_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(run(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return _with_database(pg_server_url, name)

    yield make
    for name in created:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(make_database: Callable[[], str]) -> str:
    """The run's database, migrated once."""
    url = make_database()
    asyncio.run(apply_migrations(url))
    return url


@pytest.fixture(scope="session")
def test_secrets(tmp_path_factory: pytest.TempPathFactory) -> Secrets:
    settings = load_settings({}, data_dir=tmp_path_factory.mktemp("keys"))
    return load_secrets(settings)


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Test settings: the run's database, a temp data dir, generous rate limits, fast hashing."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "data_dir": tmp_path / "data",
            "rate_limit_metadata_per_minute": 100_000,
            "rate_limit_write_per_minute": 100_000,
            "rate_limit_streaming_per_minute": 100_000,
            "rate_limit_login_per_email_per_minute": 100_000,
            "rate_limit_login_per_ip_per_minute": 100_000,
            "rate_limit_auth_per_ip_per_minute": 100_000,
            "password_hash_profile": "fast",
            "log_level": "WARNING",
            # Production leaves them unset (those routes answer 503); the tests sell plans
            # and verify domains with the stubs, and say so here.
            "payment_provider": "stub",
            "domain_verifier": "stub",
            # Test sources and media servers listen on loopback; the tests of the URL guard
            # itself turn this off.
            "allow_private_media_urls": True,
        }
        values.update(overrides)
        return Settings(**values)

    return make


ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    test_secrets: Secrets,
    database_url: str,
) -> AsyncIterator[ClientFactory]:
    """`await make_client(**setting_overrides)` → a client of a freshly built node on a
    loopback server."""

    async def make(app: web.Application | None = None, **overrides: Any) -> TestClient:
        app = app or build_app(make_settings(**overrides), test_secrets)
        return await aiohttp_client(app)

    yield make
    # Every node starts relays for all enabled streams; don't let this test's streams
    # (whose fake sources are gone) follow the run into later tests' nodes.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE streams SET enabled = false WHERE enabled")
    finally:
        await conn.close()


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient:
    return await make_client()


@pytest.fixture
def redis_url() -> str:
    """The local Redis server; tests needing it are skipped only if it is not running."""
    url = os.environ.get("TEST_REDIS_URL", LOCAL_REDIS)
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            pass
    except OSError as exc:
        if os.environ.get("CI"):  # CI must test the Redis backends, never skip them
            pytest.fail(f"Redis not reachable at {url}: {exc}")
        pytest.skip(f"Redis not reachable at {url}: {exc}")
    return url
