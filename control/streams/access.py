"""Who may change and who may read a stream (backlog US-2.2, US-2.5 – US-2.7, US-6.3).

Reading (`media_access`, status, metadata) an existing, non-deleted stream:
- disabled → 404, except the metadata and status its owner or an admin read (media is
  404 for everyone: no relay runs);
- the owner and admins always pass;
- private → a token (401) with `streams:read` (403);
- monetized → an active subscription, else 403 "Subscription required" — also for an
  anonymous caller on a public stream: a player can act on "subscribe", not on "sign in".
  A public monetized stream's metadata stays readable (the directory shows it anyway)."""

from __future__ import annotations

from control.monetization.service import PaywallService
from control.security import Principal
from control.streams.queries import StreamRow
from mediaserver.errors import Forbidden, NotFound, Unauthenticated


def stream_not_found() -> NotFound:
    return NotFound("Stream not found")


def is_privileged(principal: Principal | None, row: StreamRow) -> bool:
    return principal is not None and (principal.is_admin or principal.owns(row.owner_id))


def check_owner(principal: Principal, row: StreamRow) -> None:
    """Changes are for the stream's owner or an admin (403 for anyone else)."""
    if not is_privileged(principal, row):
        raise Forbidden("Only the stream's owner or an admin can do this")


async def check_read(
    principal: Principal | None,
    row: StreamRow,
    paywall: PaywallService,
    *,
    live_only: bool,
    paywall_public: bool,
) -> None:
    """The rules above. `live_only`: a disabled stream is 404 even for its owner;
    `paywall_public`: public monetized streams are behind the paywall too."""
    privileged = is_privileged(principal, row)
    if not row.enabled and (live_only or not privileged):
        raise stream_not_found()
    if privileged:
        return
    if row.visibility == "private":
        if principal is None:
            raise Unauthenticated("This stream is private: sign in to listen")
        if "streams:read" not in principal.scopes:
            raise Forbidden("Your token lacks the 'streams:read' scope")
    if row.monetization_enabled and (paywall_public or row.visibility == "private"):
        await paywall.require_active_subscription(principal, row.owner_id)
