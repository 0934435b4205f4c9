"""The throttle over a limiter whose Redis is gone: each node limits on its own meanwhile
(no errors, no lifted limits), with one warning."""

from __future__ import annotations

import logging
import socket
import uuid

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import make_mocked_request

from control.api import Operation
from control.ratelimit import MemoryRateLimiter, RedisRateLimiter
from control.throttle import Throttle
from mediaserver.config import Settings
from mediaserver.errors import RateLimited


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_redis_falls_back_to_per_node_limits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = aioredis.from_url(f"redis://127.0.0.1:{closed_port()}/0", socket_connect_timeout=1)
    settings = Settings(
        rate_limit_login_per_ip_per_minute=2, rate_limit_login_per_email_per_minute=5
    )
    throttle = Throttle(RedisRateLimiter(redis), settings)
    try:
        with caplog.at_level(logging.WARNING, logger="control.throttle"):
            await throttle.check_login("dj@example.com", "192.0.2.1")
            await throttle.check_login("dj@example.com", "192.0.2.1")
            with pytest.raises(RateLimited):  # the per-IP limit of 2 still holds
                await throttle.check_login("dj@example.com", "192.0.2.1")
    finally:
        await redis.aclose()
    warnings = [r for r in caplog.records if "rate limiter unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per request


async def test_a_working_limiter_still_refuses() -> None:
    settings = Settings(rate_limit_login_per_ip_per_minute=1)
    throttle = Throttle(MemoryRateLimiter(), settings)
    await throttle.check_login("a@example.com", "192.0.2.1")
    with pytest.raises(RateLimited):
        await throttle.check_login("b@example.com", "192.0.2.1")


async def test_streaming_leases_of_two_nodes_never_exceed_the_shared_limit(
    redis_url: str,
) -> None:
    """Each node takes streaming hits from Redis a lease at a time and spends them without a
    round trip per request; together they stay within the limit."""
    redis = aioredis.from_url(redis_url)
    limiter = RedisRateLimiter(redis, prefix=f"ms:test:{uuid.uuid4().hex}:")
    settings = Settings(rate_limit_streaming_per_minute=1000)  # leases of 10
    nodes = [Throttle(limiter, settings), Throttle(limiter, settings)]
    op = Operation("GET", "/v1/x", lambda r: None, "x", "media", rate="streaming")
    request = make_mocked_request("GET", "/v1/x", transport=_Peer("192.0.2.7"))
    allowed = 0
    try:
        for n in range(1200):
            node = nodes[n % 2]
            try:
                await node.check_route(request, op, None)  # aiohttp's way: leases again
                allowed += 1
            except RateLimited:
                break
        assert 995 <= allowed <= 1000 + 10  # a few tokens refill meanwhile
    finally:
        await redis.aclose()


class _Peer:
    def __init__(self, address: str) -> None:
        self._address = address

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self._address, 40000) if name == "peername" else default
