"""Who may change and who may read a podcast (backlog US-4.1 – US-4.6, US-6.3).

- Changes (podcast, episodes) are for the podcast's owner or an admin: 403 for others.
- Reading is public, except behind the paywall: the podcast page when the podcast is
  monetized (US-4.2); the feed when the podcast is monetized or any episode in it requires
  monetization (US-4.6); an episode's media when the podcast or that episode does. There,
  a caller without an active subscription, anonymous or signed in, gets 403
  `{"error": "Subscription required", "code": 403}`: the rule of streams and playlists
  (US-6.3). Owners and admins always pass (`PaywallService.require_active_subscription`).
  An invalid token is still 401 (the auth middleware refuses it before this runs).
- Episodes scheduled for later are only listed to the owner and admins.
"""

from __future__ import annotations

import uuid

from control.monetization.service import PaywallService
from control.security import Principal
from mediaserver.errors import Forbidden, NotFound


def podcast_not_found() -> NotFound:
    return NotFound("Podcast not found")


def episode_not_found() -> NotFound:
    return NotFound("Episode not found")


def is_privileged(principal: Principal | None, owner_id: uuid.UUID) -> bool:
    return principal is not None and (principal.is_admin or principal.owns(owner_id))


def check_owner(principal: Principal, owner_id: uuid.UUID) -> None:
    if not is_privileged(principal, owner_id):
        raise Forbidden("Only the podcast's owner or an admin can do this")


async def check_paywall(
    paywall: PaywallService, principal: Principal | None, owner_id: uuid.UUID, paywalled: bool
) -> None:
    """Pass unless `paywalled` and the caller is neither privileged nor subscribed."""
    if paywalled:
        await paywall.require_active_subscription(principal, owner_id)
