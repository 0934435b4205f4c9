"""Private feed URLs: what a subscriber pastes into a podcast app that cannot send an
`Authorization` header (Apple Podcasts, Overcast, Pocket Casts…).

A feed grant is a user grant (`control.grants`) over the podcast and the user it was
issued to. It opens that podcast's feed and episode media as that user, so every use runs
the same paywall check a token would (`DeliveryService`): once the subscription is
cancelled or expires, or the account is deleted or signs out everywhere, the URL stops
working — no revocation list needed. It lasts `lifetime_days` (apps keep a feed URL for
years; a lapsed subscriber's URL is refused long before that), counted from the end of the
day it was issued. It is valid from the start of that day, or from the account's cutoff
(`users.tokens_valid_after`) when that is later, so asking twice in a day gives the same
URL, and asking after signing out a new one that the sign-out does not refuse.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime, timedelta

from control.grants import Grant, Grantee, GrantSigner
from mediaserver.clock import Clock, utcnow
from mediaserver.crypto import UrlSigner

_DAY = 86_400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class FeedGrants:
    """Issues and reads podcast feed grants; time from `clock`."""

    def __init__(self, signer: UrlSigner, lifetime_days: int, clock: Clock = utcnow) -> None:
        if lifetime_days < 1:
            raise ValueError("feed grants must last at least a day")
        self._grants = GrantSigner(signer)
        self._lifetime = lifetime_days * _DAY
        self._clock = clock

    def issue(
        self, podcast_id: uuid.UUID, user_id: uuid.UUID, cutoff: datetime | None = None
    ) -> tuple[str, datetime]:
        """A grant of `podcast_id` to `user_id`, whose account signed out everywhere at
        `cutoff` (`users.tokens_valid_after`), and when it expires."""
        day = int(self._clock().timestamp()) // _DAY
        valid_from = day * _DAY * 1000
        if cutoff is not None:
            # Rounded up to the millisecond: a grant never starts before the cutoff.
            valid_from = max(valid_from, -(-((cutoff - _EPOCH) // _MICROSECOND) // 1000))
        expires = (day + 1) * _DAY + self._lifetime
        resource_of = functools.partial(_resource, podcast_id)
        grant = self._grants.issue(resource_of, Grantee(user_id, valid_from), expires)
        return grant, datetime.fromtimestamp(expires, UTC)

    def read(self, podcast_id: uuid.UUID, grant: str) -> Grant | None:
        """The genuine grant of `podcast_id` that `grant` is, expired or not (an expired
        one gets its own message); None for anything else (forged, for another podcast or
        user, malformed)."""
        return self._grants.verify(grant, functools.partial(_resource, podcast_id), None)


def _resource(podcast_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"podcast-feed:{podcast_id}:{user_id}"
