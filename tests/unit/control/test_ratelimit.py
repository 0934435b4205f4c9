"""Unit tests for the in-memory token-bucket limiter (fake clock, no sleeping)."""

from __future__ import annotations

import pytest

from control.ratelimit import Decision, MemoryRateLimiter


class FakeClock:
    """Manually advanced stand-in for time.monotonic."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> MemoryRateLimiter:
    return MemoryRateLimiter(clock=clock)


async def test_burst_of_limit_then_refused(limiter: MemoryRateLimiter) -> None:
    decisions = [await limiter.hit("user:1", limit=10, period_seconds=60) for _ in range(10)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(9, -1, -1))
    assert all(d.retry_after == 0.0 for d in decisions)

    refused = await limiter.hit("user:1", limit=10, period_seconds=60)
    assert refused == Decision(allowed=False, remaining=0, retry_after=pytest.approx(6.0))


async def test_refused_hit_consumes_nothing(limiter: MemoryRateLimiter, clock: FakeClock) -> None:
    for _ in range(10):
        await limiter.hit("k", limit=10, period_seconds=60)
    for _ in range(5):
        assert not (await limiter.hit("k", limit=10, period_seconds=60)).allowed
    clock.advance(6.0)
    assert (await limiter.hit("k", limit=10, period_seconds=60)).allowed


async def test_retry_after_shrinks_as_time_passes(
    limiter: MemoryRateLimiter, clock: FakeClock
) -> None:
    for _ in range(10):
        await limiter.hit("k", limit=10, period_seconds=60)
    clock.advance(2.5)
    refused = await limiter.hit("k", limit=10, period_seconds=60)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(3.5)


async def test_partial_refill(limiter: MemoryRateLimiter, clock: FakeClock) -> None:
    for _ in range(10):
        await limiter.hit("k", limit=10, period_seconds=60)

    # 6 s per token: after 13 s two whole tokens (and a bit) are back.
    clock.advance(13.0)
    first = await limiter.hit("k", limit=10, period_seconds=60)
    second = await limiter.hit("k", limit=10, period_seconds=60)
    third = await limiter.hit("k", limit=10, period_seconds=60)
    assert (first.allowed, first.remaining) == (True, 1)
    assert (second.allowed, second.remaining) == (True, 0)
    assert not third.allowed
    # 1/6 of a token is left over, so 5 s until the next one.
    assert third.retry_after == pytest.approx(5.0)


async def test_refill_is_capped_at_limit(limiter: MemoryRateLimiter, clock: FakeClock) -> None:
    await limiter.hit("k", limit=3, period_seconds=30)
    clock.advance(3600.0)
    decisions = [await limiter.hit("k", limit=3, period_seconds=30) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]


async def test_exact_token_boundary(limiter: MemoryRateLimiter, clock: FakeClock) -> None:
    # Period not a multiple of the limit: float refill must still hit 1.0.
    for _ in range(3):
        await limiter.hit("k", limit=3, period_seconds=1.0)
    for _ in range(3):
        clock.advance(1.0 / 9)
    assert (await limiter.hit("k", limit=3, period_seconds=1.0)).allowed


async def test_keys_are_independent(limiter: MemoryRateLimiter) -> None:
    for _ in range(2):
        assert (await limiter.hit("ip:1", limit=2, period_seconds=60)).allowed
    assert not (await limiter.hit("ip:1", limit=2, period_seconds=60)).allowed

    other = await limiter.hit("ip:2", limit=2, period_seconds=60)
    assert other == Decision(allowed=True, remaining=1, retry_after=0.0)


async def test_cost_greater_than_one(limiter: MemoryRateLimiter, clock: FakeClock) -> None:
    first = await limiter.hit("k", limit=10, period_seconds=10, cost=4)
    second = await limiter.hit("k", limit=10, period_seconds=10, cost=4)
    assert (first.allowed, first.remaining) == (True, 6)
    assert (second.allowed, second.remaining) == (True, 2)

    # Only 2 tokens left: a cost-4 hit is refused without consuming them...
    refused = await limiter.hit("k", limit=10, period_seconds=10, cost=4)
    assert refused == Decision(allowed=False, remaining=0, retry_after=pytest.approx(2.0))
    # ...so a cost-2 hit still fits.
    cheap = await limiter.hit("k", limit=10, period_seconds=10, cost=2)
    assert (cheap.allowed, cheap.remaining) == (True, 0)

    clock.advance(2.0)
    assert not (await limiter.hit("k", limit=10, period_seconds=10, cost=4)).allowed
    clock.advance(2.0)
    assert (await limiter.hit("k", limit=10, period_seconds=10, cost=4)).allowed


async def test_max_keys_bound_holds(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock, max_keys=100)
    for i in range(5_000):
        await limiter.hit(f"ip:{i}", limit=5, period_seconds=60)
        assert len(limiter) <= 100
        clock.advance(0.001)
    assert len(limiter) == 100


async def test_eviction_prefers_refilled_buckets(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock, max_keys=2)
    await limiter.hit("idle", limit=2, period_seconds=60)
    await limiter.hit("busy", limit=2, period_seconds=60, cost=2)

    # After 30 s "idle" is full again (droppable) while "busy" has 1 token.
    clock.advance(30.0)
    await limiter.hit("new", limit=2, period_seconds=60)
    assert len(limiter) == 2

    # "busy" kept its state: one token, then refused.
    assert (await limiter.hit("busy", limit=2, period_seconds=60)).allowed
    assert not (await limiter.hit("busy", limit=2, period_seconds=60)).allowed


async def test_eviction_falls_back_to_least_recently_used(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock=clock, max_keys=2)
    await limiter.hit("a", limit=1, period_seconds=60)
    await limiter.hit("b", limit=1, period_seconds=60)
    # Touch "a" so that "b" is the least recently used.
    assert not (await limiter.hit("a", limit=1, period_seconds=60)).allowed
    await limiter.hit("c", limit=1, period_seconds=60)

    assert not (await limiter.hit("a", limit=1, period_seconds=60)).allowed
    # "b" was evicted, so it starts over with a full bucket.
    assert (await limiter.hit("b", limit=1, period_seconds=60)).allowed


async def test_clock_going_backwards_does_not_drain(
    limiter: MemoryRateLimiter, clock: FakeClock
) -> None:
    await limiter.hit("k", limit=2, period_seconds=60)
    clock.advance(-100.0)
    assert (await limiter.hit("k", limit=2, period_seconds=60)).allowed


@pytest.mark.parametrize(
    ("limit", "period", "cost", "message"),
    [
        (0, 60.0, 1, "limit"),
        (-1, 60.0, 1, "limit"),
        (5, 0.0, 1, "period_seconds"),
        (5, float("inf"), 1, "period_seconds"),
        (5, 60.0, 0, "cost"),
        (5, 60.0, 6, "exceeds limit"),
    ],
)
async def test_invalid_arguments_raise(
    limiter: MemoryRateLimiter, limit: int, period: float, cost: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await limiter.hit("k", limit=limit, period_seconds=period, cost=cost)
    assert len(limiter) == 0


async def test_limit_zero_is_value_error(limiter: MemoryRateLimiter) -> None:
    with pytest.raises(ValueError, match="limit"):
        await limiter.hit("k", limit=0)


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        MemoryRateLimiter(max_keys=0)


async def test_close_is_noop(limiter: MemoryRateLimiter) -> None:
    await limiter.close()
    assert (await limiter.hit("k", limit=1)).allowed


async def test_peek_reads_the_level_without_taking(
    limiter: MemoryRateLimiter, clock: FakeClock
) -> None:
    assert await limiter.peek("p", limit=10, period_seconds=60) == 10.0
    await limiter.hit("p", limit=10, period_seconds=60, cost=4)
    assert await limiter.peek("p", limit=10, period_seconds=60) == 6.0
    assert await limiter.peek("p", limit=10, period_seconds=60) == 6.0
    clock.advance(12)  # two tokens back
    assert await limiter.peek("p", limit=10, period_seconds=60) == 8.0
