"""Private feed grants: bound to a podcast and a user, stable within a day, expiring, and
refused once the account signed out everywhere after the moment they are valid from —
to the millisecond, like access tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from control.podcasts.grants import FeedGrants, GrantState
from mediaserver.crypto import UrlSigner

NOON = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
PODCAST = uuid.uuid4()
USER = uuid.uuid4()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def grants(clock: Clock, days: int = 30) -> FeedGrants:
    return FeedGrants(UrlSigner(b"k" * 32), days, clock)


def test_a_grant_opens_its_podcast_for_its_user_until_it_expires():
    clock = Clock(NOON)
    feed_grants = grants(clock, days=30)
    grant, expires_at = feed_grants.issue(PODCAST, USER)
    assert expires_at == datetime(2025, 7, 11, tzinfo=UTC)  # the end of the day + 30 days
    check = feed_grants.check(PODCAST, grant)
    assert (check.state, check.user_id) == (GrantState.VALID, USER)
    assert feed_grants.check(uuid.uuid4(), grant).state is GrantState.INVALID
    clock.now = expires_at
    assert feed_grants.check(PODCAST, grant).state is GrantState.VALID
    clock.now = expires_at + timedelta(seconds=1)
    expired = feed_grants.check(PODCAST, grant)
    assert (expired.state, expired.user_id) == (GrantState.EXPIRED, USER)


def test_asking_twice_in_a_day_gives_the_same_grant():
    clock = Clock(NOON)
    feed_grants = grants(clock)
    first, _ = feed_grants.issue(PODCAST, USER)
    clock.now = NOON + timedelta(hours=11, minutes=59)
    assert feed_grants.issue(PODCAST, USER)[0] == first
    clock.now = NOON + timedelta(hours=12)
    assert feed_grants.issue(PODCAST, USER)[0] != first


def test_signing_out_refuses_grants_from_before_it_to_the_millisecond():
    clock = Clock(NOON)
    feed_grants = grants(clock)
    before, _ = feed_grants.issue(PODCAST, USER)
    cutoff = NOON + timedelta(minutes=5, microseconds=123_000)  # as `to_millis` writes it
    assert feed_grants.check(PODCAST, before).signed_out(cutoff)
    assert not feed_grants.check(PODCAST, before).signed_out(None)
    clock.now = cutoff + timedelta(minutes=1)
    after, _ = feed_grants.issue(PODCAST, USER, cutoff)
    assert after != before
    assert not feed_grants.check(PODCAST, after).signed_out(cutoff)
    assert feed_grants.check(PODCAST, after).signed_out(cutoff + timedelta(milliseconds=1))
    # A cutoff between two milliseconds: the grant starts after it, never before.
    odd = cutoff + timedelta(microseconds=400)
    rounded, _ = feed_grants.issue(PODCAST, USER, odd)
    assert not feed_grants.check(PODCAST, rounded).signed_out(odd)
    # An older sign-out does not move the start of the day's grant.
    assert feed_grants.issue(PODCAST, USER, NOON - timedelta(days=3))[0] == before


@pytest.mark.parametrize(
    "mangle",
    [
        lambda g: g[:-1] + ("1" if g[-1] == "0" else "0"),  # another MAC
        lambda g: uuid.uuid4().hex + g[32:],  # another user
        lambda g: g.replace(".", ".0", 1),  # the same start, written otherwise
        lambda g: g + "\n",
        lambda g: g.split(".", 1)[0] + ".²." + g.split(".", 2)[2],  # a non-ASCII digit
        lambda g: g.split(".", 1)[0],
        lambda g: "",
        lambda g: "nonsense",
        lambda g: ".".join([*g.split(".")[:1], "9" * 40, *g.split(".")[2:]]),
    ],
)
def test_anything_else_is_invalid(mangle):
    feed_grants = grants(Clock(NOON))
    grant, _ = feed_grants.issue(PODCAST, USER)
    check = feed_grants.check(PODCAST, mangle(grant))
    assert (check.state, check.user_id) == (GrantState.INVALID, None)
