"""Private feed grants: bound to a podcast and a user, stable within a day, expiring, and
starting no earlier than the account's last sign-out everywhere — to the millisecond, so
that the sign-out check (`control.grants.Grantees`, on a real PostgreSQL) refuses the ones
from before it and never the ones asked for after it. The format and hostile input are
`tests/unit/control/test_grants.py`'s."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from control.accounts import AccountGate
from control.grants import Grant, Grantees, Lapse
from control.podcasts.grants import FeedGrants
from control.security import Principal
from control.users import queries as users
from mediaserver.crypto import UrlSigner
from mediaserver.db import create_pool
from tests.clock import Clock

NOON = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
PODCAST = uuid.uuid4()
USER = uuid.uuid4()


def grants(clock: Clock, days: int = 30) -> FeedGrants:
    return FeedGrants(UrlSigner(b"k" * 32), days, clock)


def read(feed_grants: FeedGrants, podcast_id: uuid.UUID, grant: str) -> Grant:
    found = feed_grants.read(podcast_id, grant)
    assert found is not None
    return found


def test_a_grant_opens_its_podcast_for_its_user_until_it_expires() -> None:
    clock = Clock(NOON)
    feed_grants = grants(clock, days=30)
    grant, expires_at = feed_grants.issue(PODCAST, USER)
    assert expires_at == datetime(2025, 7, 11, tzinfo=UTC)  # the end of the day + 30 days
    found = read(feed_grants, PODCAST, grant)
    assert found.grantee.user_id == USER and not found.expired(NOON.timestamp())
    assert feed_grants.read(uuid.uuid4(), grant) is None
    assert not found.expired(expires_at.timestamp())
    # Past its expiry it is still genuine: an expired grant gets its own message.
    assert read(feed_grants, PODCAST, grant).expired(expires_at.timestamp() + 1)


def test_feed_urls_already_handed_out_keep_working() -> None:
    """A grant issued before grants had one module, byte for byte."""
    podcast = uuid.UUID("66666666-7777-8888-9999-aaaaaaaaaaaa")
    user = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    golden = f"{user.hex}.1749513600000.1781136000.f6583e5923b3f18b3792ea0f3a6b3db3"
    feed_grants = grants(Clock(NOON), days=365)
    assert feed_grants.issue(podcast, user)[0] == golden
    assert read(feed_grants, podcast, golden).grantee.user_id == user


def test_asking_twice_in_a_day_gives_the_same_grant() -> None:
    clock = Clock(NOON)
    feed_grants = grants(clock)
    first, _ = feed_grants.issue(PODCAST, USER)
    clock.now = NOON + timedelta(hours=11, minutes=59)
    assert feed_grants.issue(PODCAST, USER)[0] == first
    clock.now = NOON + timedelta(hours=12)
    assert feed_grants.issue(PODCAST, USER)[0] != first


def test_a_grant_starts_no_earlier_than_the_last_sign_out() -> None:
    clock = Clock(NOON)
    feed_grants = grants(clock)
    before, _ = feed_grants.issue(PODCAST, USER)
    cutoff = NOON + timedelta(minutes=5, microseconds=123_000)  # as `to_millis` writes it
    clock.now = cutoff + timedelta(minutes=1)
    after, _ = feed_grants.issue(PODCAST, USER, cutoff)
    assert after != before
    assert read(feed_grants, PODCAST, after).grantee.valid_from_ms == 1_749_557_100_123
    # A cutoff between two milliseconds: the grant starts after it, never before.
    odd, _ = feed_grants.issue(PODCAST, USER, cutoff + timedelta(microseconds=400))
    assert read(feed_grants, PODCAST, odd).grantee.valid_from_ms == 1_749_557_100_124
    # An older sign-out does not move the start of the day's grant.
    assert feed_grants.issue(PODCAST, USER, NOON - timedelta(days=3))[0] == before


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url)
    yield pool
    await pool.close()


async def test_signing_out_refuses_grants_from_before_it_to_the_millisecond(
    pool: asyncpg.Pool,
) -> None:
    user_id: uuid.UUID = await pool.fetchval(
        "INSERT INTO users (email, name, password_hash, role) VALUES ($1, 'A', 'x', 'listener') "
        "RETURNING user_id",
        f"feed-{uuid.uuid4().hex[:8]}@example.com",
    )
    gate = AccountGate(pool)
    grantees = Grantees(pool, gate)
    clock = Clock(NOON)
    feed_grants = grants(clock)
    before, _ = feed_grants.issue(PODCAST, user_id)
    cutoff = NOON + timedelta(minutes=5, microseconds=123_000)
    async with pool.acquire() as conn:
        await users.set_token_cutoff(conn, user_id, cutoff.timestamp())
        _, stored = await users.token_state(conn, user_id)
    gate.forget(user_id)
    assert stored == cutoff
    assert await grantees.principal(read(feed_grants, PODCAST, before).grantee) is (
        Lapse.SIGNED_OUT
    )
    clock.now = cutoff + timedelta(minutes=1)
    for moment in (cutoff, cutoff + timedelta(microseconds=400)):
        after, _ = feed_grants.issue(PODCAST, user_id, moment)
        holder = await grantees.principal(read(feed_grants, PODCAST, after).grantee)
        assert isinstance(holder, Principal) and holder.user_id == user_id
    # One millisecond later, the sign-out refuses it.
    async with pool.acquire() as conn:
        await users.set_token_cutoff(conn, user_id, cutoff.timestamp() + 0.001)
    gate.forget(user_id)
    after, _ = feed_grants.issue(PODCAST, user_id, cutoff)
    assert await grantees.principal(read(feed_grants, PODCAST, after).grantee) is (Lapse.SIGNED_OUT)
