"""Signed media links that speak for a user: live play links (`control.streams.grants`),
playlist segment links (`control.playlists.grants`) and private podcast feed URLs
(`control.podcasts.grants`), for players and podcast apps that cannot send an
`Authorization` header.

Every such grant is `<user id hex>.<valid from>.<expires>.<mac>` (`Grant`): a `UrlSigner`
MAC over a resource string naming the media, the user and (for streams and playlists) the
access rules then, over the moment (epoch ms) the grant is valid from, and over its expiry
(epoch s). Resource strings are namespaced per domain (`stream-play:`, `playlist:`,
`podcast-feed:`): the one key signs them all, and none stands in for another.

A grant is only as good as its user's access. Every use re-runs, for that user, the rules
a token of the account would meet (`Grantees`): the account must still exist, and must not
have signed out everywhere (a password change, `users.tokens_valid_after`) since the grant
is valid from — a grant is refused then exactly as a token issued at that moment is, by
the node's `AccountGate`: at once when that happened through this node, within the gate's
5 s when through another. For paywalled media the subscription must still be active, so a
cancelled or lapsed subscription closes the link long before it expires. Stream and
playlist grants are valid from the `iat` of the token they were issued to; feed grants
from the start of their day (or the account's cutoff), so asking twice in a day gives the
same URL.

Answers of the access rules are cached per (user, resource, rules) for `ACCESS_TTL` (1 s),
so a player reloading a live playlist every couple of seconds costs at most one account
and one subscription query per second. Rules are part of the key: a stricter setting is
checked afresh at once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from enum import Enum

import asyncpg

from control.accounts import GONE, AccountGate
from control.mediacache import TtlCache
from control.security import ROLE_SCOPES, Principal
from control.users import queries as users
from mediaserver.crypto import UrlSigner
from mediaserver.errors import Forbidden, Unauthenticated

#: `Principal.token_id` of a principal made from a link rather than a token.
VIA_LINK = "media-grant"

#: The access rules to run for a principal; raise `Forbidden`/`Unauthenticated` to refuse.
AccessCheck = Callable[[Principal], Awaitable[None]]
#: The resource string a domain signs for a user (it names the user).
ResourceOf = Callable[[uuid.UUID], str]

_USER = re.compile(r"[0-9a-f]{32}")
_NUMBER = re.compile(r"0|[1-9][0-9]{0,14}")  # canonical ASCII digits: `int` cannot fail


class Lapse(Enum):
    """Why a genuine grant no longer speaks for its user (the message is the 403's)."""

    ACCOUNT_GONE = "The account this link was issued to no longer exists"
    SIGNED_OUT = "This link was signed out with its account's sessions; fetch it again"


ACCOUNT_GONE = Lapse.ACCOUNT_GONE.value
SIGNED_OUT = Lapse.SIGNED_OUT.value


@dataclass(frozen=True, slots=True)
class Grantee:
    """Whom a grant speaks for, and since when (epoch ms)."""

    user_id: uuid.UUID
    valid_from_ms: int

    @classmethod
    def of(cls, principal: Principal) -> Grantee:
        """A grant issued to `principal` is valid from its token's `iat`."""
        return cls(principal.user_id, round(principal.issued_at * 1000))


@dataclass(frozen=True, slots=True)
class Grant:
    """`<user id hex>.<valid from>.<expires>.<mac>` as read off a URL, not yet verified;
    `signed` is `<expires>.<mac>`, what `UrlSigner.sign` made."""

    grantee: Grantee
    expires: int
    signed: str

    @classmethod
    def parse(cls, text: str) -> Grant | None:
        """The grant `text` is written as; None for anything malformed (whatever a client
        may send: non-ASCII digits, huge or non-canonical numbers, a missing part)."""
        user_hex, _, rest = text.partition(".")
        valid_from, _, signed = rest.partition(".")
        expires, _, _mac = signed.partition(".")
        parts = ((_USER, user_hex), (_NUMBER, valid_from), (_NUMBER, expires))
        if not all(pattern.fullmatch(part) for pattern, part in parts):
            return None
        return cls(Grantee(uuid.UUID(hex=user_hex), int(valid_from)), int(expires), signed)

    def __str__(self) -> str:
        return f"{self.grantee.user_id.hex}.{self.grantee.valid_from_ms}.{self.signed}"

    def expired(self, now: float) -> bool:
        """Whether it is past its expiry at `now` (epoch s); it still is up to the second."""
        return self.expires < now


class GrantSigner:
    """Issues and verifies grants with one `UrlSigner`."""

    def __init__(self, signer: UrlSigner) -> None:
        self._signer = signer

    def issue(self, resource_of: ResourceOf, grantee: Grantee, expires: int) -> str:
        """A grant of `resource_of(grantee's user)` to `grantee` until `expires` (epoch s)."""
        signed = self._signer.sign(_covered(resource_of, grantee), expires)
        return str(Grant(grantee, expires, signed))

    def verify(self, text: str, resource_of: ResourceOf, now: float | None) -> Grant | None:
        """The grant `text` is when it is genuine — issued for `resource_of(its user)` —
        and unexpired at `now` (epoch s; None: expired or not, for callers to whom an
        expired grant still means something); None for anything else (forged, malformed,
        expired, for another resource or other rules)."""
        grant = Grant.parse(text)
        if grant is None or (now is not None and grant.expired(now)):
            return None
        if not self._signer.verify(_covered(resource_of, grant.grantee), grant.signed, 0):
            return None
        return grant


def _covered(resource_of: ResourceOf, grantee: Grantee) -> str:
    return f"{resource_of(grantee.user_id)}:{grantee.valid_from_ms}"


@dataclass(frozen=True, slots=True)
class _Verdict:
    refusal: str | None  # None: allowed


class Grantees:
    """Who a grant speaks for at each use: the account (deleted, signed out) through the
    node's `AccountGate`, as a token's; then the current access rules for that user."""

    def __init__(self, pool: asyncpg.Pool, accounts: AccountGate) -> None:
        self._pool = pool
        self._accounts = accounts
        self._verdicts: TtlCache[tuple[uuid.UUID, Hashable], _Verdict] = TtlCache()

    async def require(self, grantee: Grantee, key: Hashable, check: AccessCheck) -> None:
        """Pass when the account lives, has not signed out since the grant's start, and
        `check` lets it through; else `Forbidden` (403: a link is never "sign in"). `key`
        names the resource and the rules `check` applies (the cache key, with the user);
        the answer is reused for `ACCESS_TTL`."""
        lapse = await self._lapse(grantee)
        if lapse is not None:
            raise Forbidden(lapse.value)
        user_id = grantee.user_id
        verdict = await self._verdicts.load((user_id, key), lambda: self._decide(user_id, check))
        assert verdict is not None  # `_decide` always answers
        if verdict.refusal is not None:
            raise Forbidden(verdict.refusal)

    async def principal(self, grantee: Grantee) -> Principal | Lapse:
        """The caller a grant stands for (the account's role and scopes, as a token of it
        would carry), or why it no longer does."""
        lapse = await self._lapse(grantee)
        if lapse is not None:
            return lapse
        principal = await self._account(grantee.user_id)
        return Lapse.ACCOUNT_GONE if principal is None else principal

    async def _lapse(self, grantee: Grantee) -> Lapse | None:
        """The one check of deletion and "sign out everywhere" for grants: that of a token
        issued when the grant starts (`AccountGate`)."""
        holder = Principal(
            grantee.user_id, "", "", frozenset(), VIA_LINK, grantee.valid_from_ms / 1000
        )
        try:
            await self._accounts.check(holder)
        except Unauthenticated as refused:
            return Lapse.ACCOUNT_GONE if refused.message == GONE else Lapse.SIGNED_OUT
        return None

    async def _decide(self, user_id: uuid.UUID, check: AccessCheck) -> _Verdict:
        principal = await self._account(user_id)
        if principal is None:
            return _Verdict(ACCOUNT_GONE)
        try:
            await check(principal)
        except (Forbidden, Unauthenticated) as refused:
            return _Verdict(refused.message)
        return _Verdict(None)

    async def _account(self, user_id: uuid.UUID) -> Principal | None:
        user = await users.by_id(self._pool, user_id)
        if user is None or not user.active:
            return None
        # The scopes a token of this account gets (the link was issued to such a token).
        scopes = frozenset(ROLE_SCOPES.get(user.role, ()))
        return Principal(user.user_id, user.email, user.role, scopes, VIA_LINK)
