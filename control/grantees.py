"""Who a signed media link speaks for, checked again each time it is used.

Live play links (`control.streams.grants`) and playlist segment links
(`control.playlists.delivery`) carry the id of the user they were issued to. A link is
only as good as that user's access: every use re-runs the access rules a token of that
account would meet — the account must still exist, and for paywalled media its
subscription must still be active — so a cancelled or lapsed subscription, or a deleted
account, closes the link within `ACCESS_TTL` (1 s), long before the link expires.

Such a grant is `<user id hex>.<expires>.<mac>` (`user_grant`, `grant_user`): a
`UrlSigner` MAC over a resource string naming the media, the user and the rules.

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

from control.mediacache import TtlCache
from control.security import ROLE_SCOPES, Principal
from control.users import queries as users
from mediaserver.crypto import UrlSigner
from mediaserver.errors import Forbidden, Unauthenticated

#: `Principal.token_id` of a principal made from a link rather than a token.
VIA_LINK = "media-grant"
ACCOUNT_GONE = "The account this link was issued to no longer exists"

#: The access rules to run for a principal; raise `Forbidden`/`Unauthenticated` to refuse.
AccessCheck = Callable[[Principal], Awaitable[None]]
_USER = re.compile(r"[0-9a-f]{32}")


def user_grant(signer: UrlSigner, user_id: uuid.UUID, resource: str, expires: int) -> str:
    """A grant to `user_id` of `resource` (which names the user too) until `expires`."""
    return f"{user_id.hex}.{signer.sign(resource, expires)}"


def grant_user(
    signer: UrlSigner, grant: str, resource_of: Callable[[uuid.UUID], str], now: float
) -> uuid.UUID | None:
    """The user an unexpired grant of `resource_of(user)` was issued to; None for anything
    else (forged, expired, malformed, for another resource or other rules)."""
    user_hex, _, signed = grant.partition(".")
    if not _USER.fullmatch(user_hex):
        return None
    user_id = uuid.UUID(hex=user_hex)
    return user_id if signer.verify(resource_of(user_id), signed, now) else None


@dataclass(frozen=True, slots=True)
class _Verdict:
    refusal: str | None  # None: allowed


class Grantees:
    """Re-checks the user of a link against the current rules, answers reused 1 s."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._verdicts: TtlCache[tuple[uuid.UUID, Hashable], _Verdict] = TtlCache()

    async def require(self, user_id: uuid.UUID, key: Hashable, check: AccessCheck) -> None:
        """Pass when the account `user_id` lives and `check` lets it through; else
        `Forbidden` (403: a link is never "sign in"). `key` names the resource and the
        rules `check` applies (the cache key, with the user)."""
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
