"""Applies the backlog's rate limits (US-8.5) to routes, and the login limits, on top of
whichever `RateLimiter` backend the node runs (Redis shared by all nodes, or in-process)."""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from aiohttp import web
from redis.exceptions import RedisError

from control.forwarded import ClientAddress
from control.ratelimit import MemoryRateLimiter, RateLimiter
from control.security import Principal
from mediaserver.config import Settings
from mediaserver.errors import RateLimited

if TYPE_CHECKING:
    from control.api import Operation, RateClass

log = logging.getLogger(__name__)
WARN_EVERY_SECONDS = 10.0
#: Streaming hits are taken from the limiter this many at a time (1 % of the per-minute
#: limit), then spent on this node without a round trip per media GET.
LEASE_SHARE = 100
#: Tokens of a lease left unspent this long are forgotten (never given back: the limit is
#: never exceeded, at worst a client gets a lease less per node in a minute).
LEASE_SECONDS = 10.0
MAX_LEASES = 100_000


class Throttle:
    """Rate-limit decisions; raises `RateLimited` (429 with `Retry-After`)."""

    def __init__(self, limiter: RateLimiter, settings: Settings) -> None:
        self._limiter = limiter
        self._settings = settings
        #: False when `RATE_LIMIT_ENABLED=false`: callers may skip `check_route` then.
        self.enabled = settings.rate_limit_enabled
        #: Whose address a per-IP limit counts (behind trusted proxies: the client's).
        self.client_address = ClientAddress.of(settings)
        self._warned_at = -WARN_EVERY_SECONDS
        #: Counts on this node alone while the shared limiter is unreachable.
        self._fallback = MemoryRateLimiter()
        #: Streaming leases: client address → [tokens left, monotonic expiry], spent in
        #: place (only the streaming limit leases, so the address names its bucket).
        self._leases: OrderedDict[str | None, list[Any]] = OrderedDict()
        self._limits = {
            "metadata": settings.rate_limit_metadata_per_minute,
            "write": settings.rate_limit_write_per_minute,
            "streaming": settings.rate_limit_streaming_per_minute,
            "auth": settings.rate_limit_auth_per_ip_per_minute,
        }

    async def check_route(
        self, request: web.Request, op: Operation, principal: Principal | None
    ) -> None:
        """Metadata and write limits are per user (per IP when anonymous); streaming and the
        account routes (register, refresh, logout) per IP."""
        if not self.enabled or op.rate is None:
            return
        if op.rate == "streaming":
            if not self.admits(request, op):
                await self._lease(self._address(request), self._limits["streaming"])
            return
        await self._hit(self._bucket(request, op.rate, principal), self._limits[op.rate])

    def admits(self, request: web.Request, op: Operation) -> bool:
        """`check_route` without waiting, where it can be decided here: True when limits are
        off or a streaming hit was taken from this node's lease; False when `check_route`
        must be awaited (no lease left, or a limit counted in the shared limiter)."""
        if not self.enabled or op.rate is None:
            return True
        if op.rate != "streaming":
            return False
        client = self.client_address  # `_address(request)`, written out: every media GET
        address = request.remote if client.peer_only else client(request)
        lease = self._leases.get(address)
        if lease is None:
            return False
        if lease[1] <= time.monotonic():
            del self._leases[address]
            return False
        lease[0] -= 1
        if not lease[0]:
            del self._leases[address]
        return True

    def _bucket(self, request: web.Request, rate: RateClass, principal: Principal | None) -> str:
        ip = self.client_address(request)
        per_user = principal is not None and rate in ("metadata", "write")
        who = f"user:{principal.user_id}" if per_user and principal else f"ip:{ip}"
        return f"{rate}:{who}"

    def _address(self, request: web.Request) -> str | None:
        """Whose streaming lease the request spends: the client's address (None: the peer
        of a connection that is not TCP)."""
        client = self.client_address
        return request.remote if client.peer_only else client(request)

    async def _lease(self, address: str | None, limit: int) -> None:
        """Take a lease of the client's streaming hits (this request spends one), or one
        hit when the bucket holds fewer."""
        key, size = f"streaming:ip:{address}", max(1, limit // LEASE_SHARE)
        if size > 1 and await self._hit(key, limit, size, refuse=False):
            self._leases[address] = [size - 1, time.monotonic() + LEASE_SECONDS]
            self._leases.move_to_end(address)
            while len(self._leases) > MAX_LEASES:
                self._leases.popitem(last=False)
            return
        await self._hit(key, limit)

    async def check_login(self, email: str, ip: str) -> None:
        """Before a password is checked. Nobody can lock an account by failing at it from
        elsewhere: attempts are limited per address (spraying many accounts), wrong
        passwords per (email, address); the account's wrong passwords from every address
        together have a slower limit, and once it is spent only an address with no wrong
        password for this email in the last hour may still try (its owner, most likely;
        each other address gets one guess an hour). A reset mail works meanwhile."""
        if not self.enabled:
            return
        settings = self._settings
        await self._hit(f"login:ip:{ip}", settings.rate_limit_login_per_ip_per_minute)
        who = email.strip().lower()
        pair_limit = settings.rate_limit_login_per_email_per_minute
        pair = await self._peek(f"login:fail:{who}|{ip}", pair_limit, 60.0)
        if pair < 1:
            raise RateLimited(math.ceil((1 - pair) * 60.0 / pair_limit))
        account_limit = settings.rate_limit_login_failures_per_email_per_hour
        if await self._peek(f"login:fail:{who}", account_limit, 3600.0) >= 1:
            return
        if await self._peek(f"login:failed:{who}|{ip}", 1, 3600.0) < 1:
            raise RateLimited(math.ceil(3600.0 / account_limit))

    async def login_failed(self, email: str, ip: str) -> None:
        """Count a wrong password (see `check_login`)."""
        if not self.enabled:
            return
        who, settings = email.strip().lower(), self._settings
        pair_limit = settings.rate_limit_login_per_email_per_minute
        await self._hit(f"login:fail:{who}|{ip}", pair_limit, refuse=False)
        account_limit = settings.rate_limit_login_failures_per_email_per_hour
        await self._hit(f"login:fail:{who}", account_limit, period=3600.0, refuse=False)
        await self._hit(f"login:failed:{who}|{ip}", 1, period=3600.0, refuse=False)

    async def allow_account_mail(self, email: str, ip: str) -> bool:
        """A reset or verification mail asked for: 429 beyond the per-address limit of the
        account routes; False (send nothing, say nothing) beyond the per-email limit."""
        if not self.enabled:
            return True
        await self._hit(f"mail:ip:{ip}", self._settings.rate_limit_auth_per_ip_per_minute)
        limit = self._settings.rate_limit_password_reset_per_email_per_hour
        return await self._hit(
            f"mail:email:{email.strip().lower()}", limit, period=3600.0, refuse=False
        )

    async def _peek(self, key: str, limit: int, period: float) -> float:
        try:
            return await self._limiter.peek(key, limit, period)
        except (RedisError, OSError) as exc:
            self._warn(exc)
            return await self._fallback.peek(key, limit, period)

    async def _hit(
        self, key: str, limit: int, cost: int = 1, *, period: float = 60.0, refuse: bool = True
    ) -> bool:
        """Take `cost` tokens; when they are not there, raise `RateLimited` (or, with
        `refuse=False`, answer False)."""
        try:
            decision = await self._limiter.hit(key, limit, period, cost)
        except (RedisError, OSError) as exc:
            # An outage of the shared store must neither turn every request into an error
            # nor lift the limits (login guessing): each node limits on its own meanwhile.
            self._warn(exc)
            decision = await self._fallback.hit(key, limit, period, cost)
        if not decision.allowed and refuse:
            raise RateLimited(math.ceil(decision.retry_after))
        return decision.allowed

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("shared rate limiter unavailable, limiting per node: %r", exc)


THROTTLE = web.AppKey("throttle", Throttle)
