"""Who may change and who may read what: streams, playlists, podcasts (backlog US-2.2,
US-2.5 – US-2.7, US-3.4 – US-3.8, US-4.1 – US-4.6, US-6.3, US-8.3).

One set of rules; each domain names its `Resource` (the noun its messages use, the scope
that reads private ones) and says when its paywall applies:

- changes are for the owner or an admin (403 for anyone else);
- the owner and admins always read (a disabled stream's media excepted: no relay runs);
- disabled → 404 for everyone else;
- private → a token (401) with the resource's `<domain>:read` scope (403);
- monetized → an active subscription, else 403 "Subscription required" — also for an
  anonymous caller: a player can act on "subscribe", not on "sign in"; the 403 names
  where the owner's plans are (`plans_url`). Whether the paywall also covers public
  items is the domain's call: streams' and playlists' media, a podcast's page, feed and
  episodes are behind it; a public stream's or playlist's metadata, and a public
  stream's status, song history and live feed, stay readable (US-2.5: the directory, a
  shop window).

Podcasts have no private visibility: reading them only meets the paywall
(`check_paywall`), with what is paywalled there — the page when the podcast is monetized
(US-4.2), the feed when it or any episode in it is (US-4.6), an episode's media when the
podcast or that episode is. Episodes scheduled for later are only shown to the owner and
admins (`is_privileged`). An invalid token is 401 before any of this runs (the route
table's guard refuses it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from control.monetization.service import PaywallService
from control.security import Principal
from mediaserver.errors import Forbidden, NotFound, Unauthenticated

PRIVATE = "private"


class Guarded(Protocol):
    """What the read rules look at in a stream or playlist row."""

    @property
    def owner_id(self) -> uuid.UUID: ...

    @property
    def visibility(self) -> str: ...

    @property
    def monetization_enabled(self) -> bool: ...


def is_open(item: Guarded) -> bool:
    """Public and free: anyone may listen, links need no grant."""
    return item.visibility == "public" and not item.monetization_enabled


def readable_by_anyone(item: Guarded) -> bool:
    """Not private and free: `Resource.check_read` passes anyone (for an enabled item),
    so a media route in its steady state need not call it."""
    return item.visibility != PRIVATE and not item.monetization_enabled


def rules_of(item: Guarded) -> tuple[str, bool]:
    """What decides who may read `item`, besides the reader: signed into its grants
    (`control.grants`), so a stricter setting refuses those issued before it."""
    return item.visibility, item.monetization_enabled


def is_privileged(principal: Principal | None, owner_id: uuid.UUID) -> bool:
    """The owner and admins: they may change it, and read it whatever its settings."""
    return principal is not None and (principal.is_admin or principal.owns(owner_id))


async def check_paywall(
    paywall: PaywallService, principal: Principal | None, owner_id: uuid.UUID, paywalled: bool
) -> None:
    """Pass unless `paywalled` and the caller is neither privileged nor subscribed to the
    owner (403 "Subscription required")."""
    if paywalled:
        await paywall.require_active_subscription(principal, owner_id)


@dataclass(frozen=True, slots=True)
class Resource:
    """A kind of thing the rules guard: `noun` as the messages say it, and the token scope
    that reads a private one."""

    noun: str
    read_scope: str

    def not_found(self) -> NotFound:
        """Unknown, deleted, or (for whoever may not see it) disabled."""
        return NotFound(f"{self.noun.capitalize()} not found")

    def check_owner(self, principal: Principal, owner_id: uuid.UUID) -> None:
        """Changes are for the owner or an admin (403 for anyone else)."""
        if not is_privileged(principal, owner_id):
            raise Forbidden(f"Only the {self.noun}'s owner or an admin can do this")

    async def check_read(
        self,
        principal: Principal | None,
        item: Guarded,
        paywall: PaywallService,
        *,
        paywall_public: bool,
        enabled: bool = True,
        live_only: bool = False,
    ) -> None:
        """The rules above for an existing `item`. `paywall_public`: a public monetized
        item is behind the paywall too (a private one always is); `enabled` False: 404
        except for the owner and admins, and for them too with `live_only`."""
        if enabled and readable_by_anyone(item):
            return
        privileged = is_privileged(principal, item.owner_id)
        if not enabled and (live_only or not privileged):
            raise self.not_found()
        if privileged:
            return
        private = item.visibility == PRIVATE
        if private:
            if principal is None:
                raise Unauthenticated(f"This {self.noun} is private: sign in to listen")
            if self.read_scope not in principal.scopes:
                raise Forbidden(f"Your token lacks the '{self.read_scope}' scope")
        paywalled = item.monetization_enabled and (paywall_public or private)
        await check_paywall(paywall, principal, item.owner_id, paywalled)


STREAM = Resource("stream", "streams:read")
PLAYLIST = Resource("playlist", "playlists:read")
PODCAST = Resource("podcast", "podcasts:read")
#: An episode is read as part of its podcast; only its "not found" is its own.
EPISODE = Resource("episode", "podcasts:read")
