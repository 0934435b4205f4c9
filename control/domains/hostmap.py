"""Which podcast a custom `Host` serves: a small in-process cache in front of the database.

Only requests for the custom-domain paths (`/rss.xml`, `/episodes/…`) consult it. Entries
(unknown hosts included, so a flood of made-up hosts costs one query each at most per TTL)
live `ttl` seconds; this node drops them at once when a domain or attachment changes, other
nodes within `ttl`. The map is bounded: when full, it starts over.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

Loader = Callable[[str], Awaitable[uuid.UUID | None]]


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
        ttl: float = 30.0,
        max_entries: int = 4096,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._ttl = ttl
        self._max = max_entries
        self._monotonic = monotonic
        self._entries: dict[str, tuple[uuid.UUID | None, float]] = {}

    async def podcast_for(self, host: str) -> uuid.UUID | None:
        """The podcast served at `host` (already normalised by `host_of`), or None."""
        now = self._monotonic()
        entry = self._entries.get(host)
        if entry is not None and entry[1] > now:
            return entry[0]
        podcast_id = await self._loader(host)
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[host] = (podcast_id, now + self._ttl)
        return podcast_id

    def invalidate(self, host: str | None) -> None:
        """Forget `host` (nothing to do for None: a podcast without a domain)."""
        if host is not None:
            self._entries.pop(host, None)
