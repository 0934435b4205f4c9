"""Private feed URLs: what a subscriber pastes into a podcast app that cannot send an
`Authorization` header (Apple Podcasts, Overcast, Pocket Casts…).

A grant is `<user id hex>.<expires>.<mac>`: a `UrlSigner` MAC over the podcast and the user
it was issued to. It opens that podcast's feed and episode media as that user, so every use
runs the same paywall check a token would (`DeliveryService`): once the subscription is
cancelled or expires, or the account is deleted, the URL stops working — no revocation list
needed. It lasts `lifetime_days` (apps keep a feed URL for years; a lapsed subscriber's URL
is refused long before that), counted from the end of the day it was issued, so asking
twice in a day gives the same URL.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from mediaserver.clock import Clock, utcnow
from mediaserver.crypto import UrlSigner

_DAY = 86_400
_USER = re.compile(r"^[0-9a-f]{32}$")


class FeedGrants:
    """Issues and reads podcast feed grants; time from `clock`."""

    def __init__(self, signer: UrlSigner, lifetime_days: int, clock: Clock = utcnow) -> None:
        if lifetime_days < 1:
            raise ValueError("feed grants must last at least a day")
        self._signer = signer
        self._lifetime = lifetime_days * _DAY
        self._clock = clock

    def issue(self, podcast_id: uuid.UUID, user_id: uuid.UUID) -> tuple[str, datetime]:
        """A grant of `podcast_id` to `user_id`, and when it expires."""
        expires = (int(self._clock().timestamp()) // _DAY + 1) * _DAY + self._lifetime
        signed = self._signer.sign(_resource(podcast_id, user_id), expires)
        return f"{user_id.hex}.{signed}", datetime.fromtimestamp(expires, UTC)

    def user_of(self, podcast_id: uuid.UUID, grant: str) -> uuid.UUID | None:
        """The user an unexpired grant of `podcast_id` was issued to; None for anything else
        (forged, for another podcast, expired, malformed)."""
        user_hex, _, signed = grant.partition(".")
        if not _USER.match(user_hex):
            return None
        user_id = uuid.UUID(hex=user_hex)
        now = self._clock().timestamp()
        if not self._signer.verify(_resource(podcast_id, user_id), signed, now):
            return None
        return user_id


def _resource(podcast_id: uuid.UUID, user_id: uuid.UUID) -> str:
    # Namespaced: the signer's key also signs stream and playlist grants.
    return f"podcast-feed:{podcast_id}:{user_id}"
