"""Token-bucket rate limiting for per-user / per-IP API limits.

Two interchangeable backends implement :class:`RateLimiter`:

* :class:`MemoryRateLimiter` -- in-process, for a single node (no ``REDIS_URL``).
* :class:`RedisRateLimiter` -- shared by every node through one Redis server.

Both follow the same semantics: each key owns a bucket with capacity ``limit``
that refills continuously at ``limit / period_seconds`` tokens per second and
starts full.  A hit takes ``cost`` tokens if they are all available; otherwise
nothing is taken and the caller learns how long to wait.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import redis.asyncio

__all__ = [
    "Decision",
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
]

# Refills are computed in floating point, so a bucket that is "exactly" full
# enough can come out a hair short (0.9999999999 tokens).  Treating anything
# within this margin as available keeps boundaries exact in practice.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of one :meth:`RateLimiter.hit`.

    ``remaining`` is the number of whole tokens left after this hit (0 when
    refused); ``retry_after`` is the number of seconds until the refused hit
    could succeed (0.0 when allowed).
    """

    allowed: bool
    remaining: int
    retry_after: float


class RateLimiter(Protocol):
    """Interface shared by the rate-limiter backends."""

    async def hit(
        self, key: str, limit: int, period_seconds: float = 60.0, cost: int = 1
    ) -> Decision:
        """Try to take ``cost`` tokens from the bucket for ``key``."""
        ...

    async def peek(self, key: str, limit: int, period_seconds: float = 60.0) -> float:
        """The tokens in the bucket for ``key`` now (``limit`` when it is full or unknown),
        taking none."""
        ...

    async def close(self) -> None:
        """Release resources owned by the limiter."""
        ...


def _validate(limit: int, period_seconds: float, cost: int) -> None:
    """Reject arguments for which the bucket would be meaningless."""
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit!r}")
    if not (period_seconds > 0 and math.isfinite(period_seconds)):
        raise ValueError(f"period_seconds must be positive and finite, got {period_seconds!r}")
    if cost < 1:
        raise ValueError(f"cost must be at least 1, got {cost!r}")
    # A cost above capacity could never be satisfied; a retry_after would lie.
    if cost > limit:
        raise ValueError(f"cost {cost!r} exceeds limit {limit!r}; the hit could never succeed")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    # Clock time from which the bucket is full again, i.e. indistinguishable
    # from a missing one; such buckets are the first to be dropped.
    full_at: float


class MemoryRateLimiter:
    """In-process token-bucket limiter for a single node.

    Buckets live in a dict bounded by ``max_keys``.  When a new key arrives and
    the dict is full, the least recently used buckets are dropped while they
    have already refilled (dropping those loses nothing); if the oldest bucket
    is still partly drained it is evicted anyway, which only ever errs towards
    letting that key through.  ``clock`` must be monotonic, in seconds.

    Not thread-safe: it is meant to be used from one event loop, where
    :meth:`hit` runs without yielding and is therefore atomic.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys!r}")
        self._clock = clock
        self._max_keys = max_keys
        # Ordered by last hit (oldest first), which makes eviction O(1) amortised.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        """Number of buckets currently tracked."""
        return len(self._buckets)

    async def hit(
        self, key: str, limit: int, period_seconds: float = 60.0, cost: int = 1
    ) -> Decision:
        """Try to take ``cost`` tokens from the bucket for ``key``."""
        _validate(limit, period_seconds, cost)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            tokens = float(limit)
        else:
            self._buckets.move_to_end(key)
            # max(): a clock that steps backwards must not drain the bucket.
            elapsed = max(0.0, now - bucket.updated)
            # elapsed * limit / period rather than elapsed * rate: dividing
            # last keeps whole-token boundaries exact (6 s * 10 / 60 == 1.0).
            tokens = min(float(limit), bucket.tokens + elapsed * limit / period_seconds)

        if tokens + _EPSILON >= cost:
            tokens = max(0.0, tokens - cost)
            decision = Decision(True, math.floor(tokens + _EPSILON), 0.0)
        else:
            retry_after = (cost - tokens) * period_seconds / limit
            decision = Decision(False, 0, retry_after)

        full_at = now + (limit - tokens) * period_seconds / limit
        if bucket is None:
            self._buckets[key] = _Bucket(tokens, now, full_at)
        else:
            bucket.tokens, bucket.updated, bucket.full_at = tokens, now, full_at
        return decision

    async def peek(self, key: str, limit: int, period_seconds: float = 60.0) -> float:
        """The tokens in the bucket for ``key`` now, taking none."""
        _validate(limit, period_seconds, 1)
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(limit)
        elapsed = max(0.0, self._clock() - bucket.updated)
        return min(float(limit), bucket.tokens + elapsed * limit / period_seconds)

    def _make_room(self, now: float) -> None:
        """Evict buckets until one more fits under ``max_keys``."""
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if oldest.full_at > now:
                break
            buckets.popitem(last=False)
        while len(buckets) >= self._max_keys:
            buckets.popitem(last=False)

    async def close(self) -> None:
        """Nothing to release; present to satisfy :class:`RateLimiter`."""


# KEYS[1] = bucket hash; ARGV = limit, period (s), cost, ttl (s), epsilon.
# Uses the server clock so that nodes with skewed clocks agree.  Numbers are
# stored with %.17g so they round-trip exactly through the hash.  Lua numbers
# become integers in the reply, so retry_after travels as whole milliseconds.
_HIT_SCRIPT = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local eps = tonumber(ARGV[5])

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000

local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = limit
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then
  elapsed = 0
end
tokens = math.min(limit, tokens + elapsed * limit / period)

local allowed = 0
local remaining = 0
local retry_ms = 0
if tokens + eps >= cost then
  tokens = math.max(0, tokens - cost)
  allowed = 1
  remaining = math.floor(tokens + eps)
else
  retry_ms = math.ceil((cost - tokens) * period * 1000 / limit)
end

redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
redis.call('EXPIRE', key, ttl)
return {allowed, remaining, retry_ms}
"""

# KEYS[1] = bucket hash; ARGV = limit, period (s). The level in thousandths of a token.
_PEEK_SCRIPT = """
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  return limit * 1000
end
local t = redis.call('TIME')
local elapsed = math.max(0, tonumber(t[1]) + tonumber(t[2]) / 1000000 - ts)
return math.floor(math.min(limit, tokens + elapsed * limit / period) * 1000)
"""


class RedisRateLimiter:
    """Token-bucket limiter shared by all nodes through Redis.

    Each hit is one Lua script execution, so read-refill-consume-write is
    atomic across concurrent callers and nodes.  Bucket keys are
    ``prefix + key`` and expire once they would have refilled completely
    (about ``period_seconds``), so idle keys cost nothing.

    The Redis client is borrowed: :meth:`close` leaves it open.  Redis errors
    propagate; whether to fail open or closed is the caller's decision.
    """

    def __init__(self, redis: redis.asyncio.Redis, prefix: str = "ms:rl:") -> None:
        self._redis = redis
        self._prefix = prefix
        # register_script only hashes the source; the script is loaded lazily
        # (EVALSHA, then SCRIPT LOAD on NOSCRIPT), so no I/O happens here.
        self._script = redis.register_script(_HIT_SCRIPT)
        self._peek = redis.register_script(_PEEK_SCRIPT)

    async def hit(
        self, key: str, limit: int, period_seconds: float = 60.0, cost: int = 1
    ) -> Decision:
        """Try to take ``cost`` tokens from the bucket for ``key``."""
        _validate(limit, period_seconds, cost)
        # A bucket left alone for period_seconds is full again, so expiring it
        # then is lossless; ceil keeps that true for fractional periods.
        ttl = max(1, math.ceil(period_seconds))
        allowed, remaining, retry_ms = await self._script(
            keys=[self._prefix + key],
            args=[int(limit), repr(float(period_seconds)), int(cost), ttl, repr(_EPSILON)],
        )
        if int(allowed):
            return Decision(True, int(remaining), 0.0)
        return Decision(False, 0, int(retry_ms) / 1000.0)

    async def peek(self, key: str, limit: int, period_seconds: float = 60.0) -> float:
        """The tokens in the bucket for ``key`` now, taking none."""
        _validate(limit, period_seconds, 1)
        level = await self._peek(
            keys=[self._prefix + key], args=[int(limit), repr(float(period_seconds))]
        )
        return int(level) / 1000.0

    async def close(self) -> None:
        """Do nothing: the Redis client belongs to the caller."""
