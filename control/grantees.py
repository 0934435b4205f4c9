"""Who a signed media link speaks for, checked again each time it is used.

Live play links (`control.streams.grants`) and playlist segment links
(`control.playlists.delivery`) carry the id of the user they were issued to. A link is
only as good as that user's access: every use re-runs the access rules a token of that
account would meet — the account must still exist, and for paywalled media its
subscription must still be active — so a cancelled or lapsed subscription, or a deleted
account, closes the link within `ACCESS_TTL` (1 s), long before the link expires.

Such a grant is `<user id hex>.<valid from>.<expires>.<mac>` (`user_grant`, `grant_user`):
a `UrlSigner` MAC over a resource string naming the media, the user and the rules, and the
moment (epoch ms) the link is valid from — the `iat` of the token it was issued to. "Sign
out everywhere" (a password change, `users.tokens_valid_after`) ends the link with that
token: one valid from before the account's cutoff is refused, as the token is (the podcast
feed grants of `control.podcasts.grants` have the same shape and rule). The account is
checked by the node's `AccountGate`, as a token's is: a deletion or sign-out made through
this node closes the link at once, one made through another within the gate's 5 s.

Answers are cached per (user, resource, rules) for `ACCESS_TTL`, so a player reloading a
live playlist every couple of seconds costs at most one account and one subscription
query per second. Rules are part of the key: a stricter setting is checked afresh at once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

import asyncpg

from control.accounts import GONE, AccountGate
from control.mediacache import TtlCache
from control.security import ROLE_SCOPES, Principal
from control.users import queries as users
from mediaserver.crypto import UrlSigner
from mediaserver.errors import Forbidden, Unauthenticated

#: `Principal.token_id` of a principal made from a link rather than a token.
VIA_LINK = "media-grant"
ACCOUNT_GONE = "The account this link was issued to no longer exists"
SIGNED_OUT = "This link was signed out with its account's sessions; fetch it again"

#: The access rules to run for a principal; raise `Forbidden`/`Unauthenticated` to refuse.
AccessCheck = Callable[[Principal], Awaitable[None]]
_USER = re.compile(r"[0-9a-f]{32}")
_NUMBER = re.compile(r"0|[1-9][0-9]{0,14}")  # canonical ASCII digits: `int` cannot fail


@dataclass(frozen=True, slots=True)
class Grantee:
    """Whom a genuine, unexpired grant speaks for, and since when (epoch ms)."""

    user_id: uuid.UUID
    valid_from_ms: int


def valid_from_of(principal: Principal) -> int:
    """A link issued to `principal` is valid from its token's `iat` (epoch ms)."""
    return round(principal.issued_at * 1000)


def user_grant(signer: UrlSigner, grantee: Grantee, resource: str, expires: int) -> str:
    """A grant of `resource` (which names the user too) to `grantee` until `expires`."""
    valid_from = grantee.valid_from_ms
    signed = signer.sign(f"{resource}:{valid_from}", expires)
    return f"{grantee.user_id.hex}.{valid_from}.{signed}"


def grant_user(
    signer: UrlSigner, grant: str, resource_of: Callable[[uuid.UUID], str], now: float
) -> Grantee | None:
    """Whom an unexpired grant of `resource_of(user)` was issued to; None for anything
    else (forged, expired, malformed, for another resource or other rules)."""
    user_hex, _, rest = grant.partition(".")
    valid_from, _, signed = rest.partition(".")
    if not (_USER.fullmatch(user_hex) and _NUMBER.fullmatch(valid_from)):
        return None
    user_id = uuid.UUID(hex=user_hex)
    if not signer.verify(f"{resource_of(user_id)}:{valid_from}", signed, now):
        return None
    return Grantee(user_id, int(valid_from))


@dataclass(frozen=True, slots=True)
class _Verdict:
    refusal: str | None  # None: allowed


class Grantees:
    """Re-checks the user of a link against the current rules, answers reused 1 s; the
    account itself (deleted, signed out) through the node's `AccountGate`, as a token's."""

    def __init__(self, pool: asyncpg.Pool, accounts: AccountGate) -> None:
        self._pool = pool
        self._accounts = accounts
        self._verdicts: TtlCache[tuple[uuid.UUID, Hashable], _Verdict] = TtlCache()

    async def require(self, grantee: Grantee, key: Hashable, check: AccessCheck) -> None:
        """Pass when the account lives, has not signed out since the grant's start, and
        `check` lets it through; else `Forbidden` (403: a link is never "sign in"). `key`
        names the resource and the rules `check` applies (the cache key, with the user)."""
        user_id = grantee.user_id
        # A token issued when the grant starts: refused once the account is deleted or
        # signed out since (at once when that happened through this node).
        holder = Principal(user_id, "", "", frozenset(), VIA_LINK, grantee.valid_from_ms / 1000)
        try:
            await self._accounts.check(holder)
        except Unauthenticated as refused:
            raise Forbidden(ACCOUNT_GONE if refused.message == GONE else SIGNED_OUT) from None
        verdict = await self._verdicts.load((user_id, key), lambda: self._decide(user_id, check))
        assert verdict is not None  # `_decide` always answers
        if verdict.refusal is not None:
            raise Forbidden(verdict.refusal)

    async def _decide(self, user_id: uuid.UUID, check: AccessCheck) -> _Verdict:
        user = await users.by_id(self._pool, user_id)
        if user is None:
            return _Verdict(ACCOUNT_GONE)
        # The scopes a token of this account gets (the link was issued to such a token).
        scopes = frozenset(ROLE_SCOPES.get(user.role, ()))
        principal = Principal(user.user_id, user.email, user.role, scopes, VIA_LINK)
        try:
            await check(principal)
        except (Forbidden, Unauthenticated) as refused:
            return _Verdict(refused.message)
        return _Verdict(None)
