"""Private feed URLs: what a subscriber pastes into a podcast app that cannot send an
`Authorization` header (Apple Podcasts, Overcast, Pocket Casts…).

A grant is `<user id hex>.<valid from>.<expires>.<mac>`: a `UrlSigner` MAC over the
podcast, the user it was issued to and the moment it is valid from (epoch milliseconds).
It opens that podcast's feed and episode media as that user, so every use runs the same
paywall check a token would (`DeliveryService`): once the subscription is cancelled or
expires, or the account is deleted, the URL stops working — no revocation list needed.
"Sign out everywhere" (a password change, `users.tokens_valid_after`) ends it too: a grant
valid from before the account's cutoff is refused, exactly as an access token issued
before it is. It lasts `lifetime_days` (apps keep a feed URL for years; a lapsed
subscriber's URL is refused long before that), counted from the end of the day it was
issued. It is valid from the start of that day, or from the account's cutoff when that is
later, so asking twice in a day gives the same URL, and asking after signing out a new one.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from mediaserver.clock import Clock, utcnow
from mediaserver.crypto import UrlSigner

_DAY = 86_400
_USER = re.compile(r"[0-9a-f]{32}")
_NUMBER = re.compile(r"0|[1-9][0-9]{0,14}")  # canonical ASCII digits: `int` cannot fail
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class GrantState(Enum):
    VALID = "valid"
    EXPIRED = "expired"  # genuine, for this podcast, but past its expiry
    INVALID = "invalid"  # forged, for another podcast or user, malformed


@dataclass(frozen=True, slots=True)
class GrantCheck:
    """What `FeedGrants.check` found: the user of a genuine grant (valid or expired) and
    the moment (epoch ms) it is valid from."""

    state: GrantState
    user_id: uuid.UUID | None = None
    valid_from_ms: int = 0

    def signed_out(self, cutoff: datetime | None) -> bool:
        """Whether the account signed out everywhere (`cutoff`) after the grant's start."""
        return cutoff is not None and self.valid_from_ms * 1000 < _micros(cutoff)


class FeedGrants:
    """Issues and reads podcast feed grants; time from `clock`."""

    def __init__(self, signer: UrlSigner, lifetime_days: int, clock: Clock = utcnow) -> None:
        if lifetime_days < 1:
            raise ValueError("feed grants must last at least a day")
        self._signer = signer
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
            valid_from = max(valid_from, -(-_micros(cutoff) // 1000))  # ms, rounded up
        expires = (day + 1) * _DAY + self._lifetime
        signed = self._signer.sign(_resource(podcast_id, user_id, valid_from), expires)
        return f"{user_id.hex}.{valid_from}.{signed}", datetime.fromtimestamp(expires, UTC)

    def check(self, podcast_id: uuid.UUID, grant: str) -> GrantCheck:
        """Whether `grant` is a genuine grant of `podcast_id`, and unexpired."""
        user_hex, _, rest = grant.partition(".")
        valid_from, _, signed = rest.partition(".")
        expires, _, _mac = signed.partition(".")
        if not all(
            pattern.fullmatch(part)
            for pattern, part in ((_USER, user_hex), (_NUMBER, valid_from), (_NUMBER, expires))
        ):
            return GrantCheck(GrantState.INVALID)
        user_id = uuid.UUID(hex=user_hex)
        resource = _resource(podcast_id, user_id, int(valid_from))
        if not self._signer.verify(resource, signed, 0):  # genuine, whenever it expires
            return GrantCheck(GrantState.INVALID)
        expired = int(expires) < self._clock().timestamp()
        state = GrantState.EXPIRED if expired else GrantState.VALID
        return GrantCheck(state, user_id, int(valid_from))


def _resource(podcast_id: uuid.UUID, user_id: uuid.UUID, valid_from_ms: int) -> str:
    # Namespaced: the signer's key also signs stream and playlist grants.
    return f"podcast-feed:{podcast_id}:{user_id}:{valid_from_ms}"


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND
