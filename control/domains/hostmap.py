"""Which podcast a custom `Host` serves: a small in-process cache in front of the database.

Only requests for the custom-domain paths (`/rss.xml`, `/episodes/…`) consult it. Entries
(unknown hosts included, so a flood of made-up hosts costs one query each at most per TTL)
live `ttl` seconds. A change (a domain verified, attached, detached or deleted; a podcast
deleted) bumps a version: with Redis (`RedisHostVersions`) one counter shared by every node,
read on each lookup — one `GET`, far cheaper than the query it saves — so every node drops
its entries at once; without Redis (one node) the change is local anyway. If Redis cannot
be reached, entries fall back to living `ttl` seconds. The map is bounded: when full, it
starts over.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from redis.exceptions import RedisError

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger(__name__)

Loader = Callable[[str], Awaitable[uuid.UUID | None]]


class HostVersions(Protocol):
    """The version of the host → podcast routing, bumped by every change of it."""

    async def current(self) -> int | None:
        """The version now; None when it cannot be told (entries then live their TTL)."""
        ...

    async def bump(self) -> None: ...


class LocalHostVersions:
    """One node: its own `HostMap.invalidate` is all the invalidation there is."""

    async def current(self) -> int | None:
        return 0

    async def bump(self) -> None:
        return None


class RedisHostVersions:
    """A counter in Redis, shared by every node of the cluster."""

    def __init__(self, redis: redis.asyncio.Redis, key: str = "ms:hosts:version") -> None:
        self._redis = redis
        self._key = key

    async def current(self) -> int | None:
        try:
            value = await self._redis.get(self._key)
        except (RedisError, OSError) as exc:
            log.warning("host routing version unavailable, caching by TTL: %r", exc)
            return None
        return int(value or 0)

    async def bump(self) -> None:
        try:
            await self._redis.incr(self._key)
        except (RedisError, OSError) as exc:
            log.warning("host routing change not shared with other nodes: %r", exc)


def host_of(header: str | None) -> str | None:
    """The host name of a `Host` header: port stripped, lower case, no trailing dot."""
    if not header:
        return None
    host = header.strip().lower()
    if host.startswith("["):  # an IPv6 literal is never a custom domain
        return None
    host = host.rsplit(":", 1)[0] if ":" in host else host
    return host.removesuffix(".") or None


class HostMap:
    def __init__(
        self,
        loader: Loader,
        versions: HostVersions | None = None,
        ttl: float = 30.0,
        max_entries: int = 4096,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._versions = versions or LocalHostVersions()
        self._ttl = ttl
        self._max = max_entries
        self._monotonic = monotonic
        # host → (podcast, expiry, version it was loaded at)
        self._entries: dict[str, tuple[uuid.UUID | None, float, int | None]] = {}
        self._version: int | None = None

    async def podcast_for(self, host: str) -> uuid.UUID | None:
        """The podcast served at `host` (already normalised by `host_of`), or None."""
        version = await self._versions.current()
        if version is not None and version != self._version:
            self._entries.clear()  # something changed, on this node or another
            self._version = version
        now = self._monotonic()
        entry = self._entries.get(host)
        if entry is not None and entry[1] > now and entry[2] == self._version:
            return entry[0]
        loaded_at = self._version  # a change during the load makes this entry stale
        podcast_id = await self._loader(host)
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[host] = (podcast_id, now + self._ttl, loaded_at)
        return podcast_id

    async def invalidate(self, host: str | None) -> None:
        """Forget `host` here and, through the version, on every node (nothing to do for
        None: a podcast without a domain). Call it once the change is committed."""
        if host is not None:
            self._entries.pop(host, None)
            await self._versions.bump()
