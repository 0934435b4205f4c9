"""Readiness of the components a node needs, for `/v1/health`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from aiohttp import web

from mediaserver.storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)

#: Looked up (never written) to check the object store answers: "not found" is an answer.
STORE_PROBE_KEY = "health/probe"


class HealthService:
    """Pings PostgreSQL (and Redis and the object store when given) with a short timeout each."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Any = None,
        timeout: float = 2.0,
        store: ObjectStore | None = None,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._timeout = timeout
        self._store = store
        #: Set on SIGTERM: the node finishes what it serves and takes nothing new.
        self.draining = False

    async def failing(self) -> list[str]:
        """Names of the components that did not answer; empty when all is well."""
        checks = {"database": self._database()}
        if self._redis is not None:
            checks["redis"] = self._redis.ping()
        if self._store is not None:
            checks["storage"] = self._storage()
        results = await asyncio.gather(
            *(asyncio.wait_for(c, self._timeout) for c in checks.values()), return_exceptions=True
        )
        failing = []
        for name, result in zip(checks, results, strict=True):
            if isinstance(result, BaseException):
                log.warning(
                    "health check failed", extra={"component": name, "reason": repr(result)}
                )
                failing.append(name)
        return failing

    async def ready(self) -> str | None:
        """Why this node cannot take listeners now (None: it can). Only what is its own:
        shutting down, or its database unreachable. A Redis or object-store blip affects
        every node alike, and MP3 fan-out needs neither, so it does not take the node out
        of its Service (`failing` still reports it)."""
        if self.draining:
            return "shutting down"
        try:
            await asyncio.wait_for(self._database(), self._timeout)
        except Exception as exc:  # any failure means "not ready"; logged
            log.warning("readiness check failed", extra={"reason": repr(exc)})
            return "database unreachable"
        return None

    async def _database(self) -> None:
        async with self._pool.acquire(timeout=self._timeout) as conn:
            await conn.fetchval("SELECT 1")

    async def _storage(self) -> None:
        assert self._store is not None
        try:
            await self._store.head(STORE_PROBE_KEY)
        except ObjectNotFound:
            pass


HEALTH = web.AppKey("health_service", HealthService)
