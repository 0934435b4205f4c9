"""Who may change and who may read a podcast (backlog US-4.1 – US-4.6, US-6.3).

- Changes (podcast, episodes) are for the podcast's owner or an admin: 403 for others.
- Reading is public, except behind the paywall: the podcast page when the podcast is
  monetized (US-4.2); the feed when the podcast is monetized or any episode in it requires
  monetization (US-4.6); an episode's media when the podcast or that episode does. There,
  an anonymous caller gets 401 (a token would help, DESIGN "401 = no/invalid token") and a
  signed-in caller without an active subscription 403 "Subscription required"; owners and
  admins always pass (`PaywallService.require_active_subscription`).
- Episodes scheduled for later are only listed to the owner and admins.
"""

from __future__ import annotations

import uuid

from control.monetization.service import PaywallService
from control.security import Principal
from mediaserver.errors import Forbidden, NotFound, Unauthenticated


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
    if not paywalled:
        return
    if principal is None:
        raise Unauthenticated("Subscription required: sign in with a subscribed account")
    await paywall.require_active_subscription(principal, owner_id)
