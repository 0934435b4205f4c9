"""Who may change and who may play a playlist (backlog US-3.4 – US-3.8, US-6.3).

The same rules as streams (`control/streams/access.py`):
- changes are for the playlist's owner or an admin (403 for anyone else);
- the owner and admins always read and play;
- private → a token (401) with `playlists:read` (403);
- monetized → an active subscription, else 403 "Subscription required": for the media
  routes whatever the visibility (US-6.3), for the metadata of private playlists (US-3.4;
  a public monetized playlist's track list stays readable, like a shop window).
"""

from __future__ import annotations

from control.monetization.service import PaywallService
from control.playlists.queries import PlaylistRow
from control.security import Principal
from mediaserver.errors import Forbidden, NotFound, Unauthenticated


def playlist_not_found() -> NotFound:
    return NotFound("Playlist not found")


def is_privileged(principal: Principal | None, row: PlaylistRow) -> bool:
    return principal is not None and (principal.is_admin or principal.owns(row.owner_id))


def check_owner(principal: Principal, row: PlaylistRow) -> None:
    if not is_privileged(principal, row):
        raise Forbidden("Only the playlist's owner or an admin can do this")


async def check_read(
    principal: Principal | None, row: PlaylistRow, paywall: PaywallService, *, media: bool
) -> None:
    """The rules above; `media` for `stream.m3u8`, `stream.mp3` and segments."""
    if is_privileged(principal, row):
        return
    if row.visibility == "private":
        if principal is None:
            raise Unauthenticated("This playlist is private: sign in to listen")
        if "playlists:read" not in principal.scopes:
            raise Forbidden("Your token lacks the 'playlists:read' scope")
    if row.monetization_enabled and (media or row.visibility == "private"):
        await paywall.require_active_subscription(principal, row.owner_id)
