"""Whether an access token still speaks for a live account.

A JWT stays valid until it expires, so on its own a deleted account, or one whose password
was changed because it leaked, would keep working for up to a day. `AccountGate` checks
each authenticated request against the account's row: deleted → 401, token issued before
the account's cutoff (`users.tokens_valid_after`) → 401. Answers are cached per user for
`ttl` seconds, so a busy caller costs one query per `ttl`; a change made through this node
takes effect at once, one made through another node within `ttl`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiohttp import web

from control.auth import queries as tokens
from control.security import Principal, to_millis
from control.users import queries
from mediaserver.db import Executor
from mediaserver.errors import Forbidden, Unauthenticated

DEFAULT_TTL = 5.0
GONE = "This account no longer exists"
MAX_CACHED = 100_000


@dataclass(frozen=True, slots=True)
class _State:
    checked_at: float  # monotonic
    live: bool
    cutoff: float | None  # epoch seconds; tokens issued before it are refused


class AccountGate:
    """Refuses tokens of deleted accounts and tokens older than the account's cutoff."""

    def __init__(
        self, pool: asyncpg.Pool, ttl: float = DEFAULT_TTL, *, require_verified: bool = False
    ) -> None:
        self._pool = pool
        self._ttl = ttl
        #: `REQUIRE_VERIFIED_EMAIL`: see `check_verified`.
        self.require_verified = require_verified
        self._cache: OrderedDict[uuid.UUID, _State] = OrderedDict()
        #: Bumped by `forget`: a read that began before a sign-out is not cached after it.
        self._generation = 0
        #: One read per account at a time: a player's 50 parallel requests share it.
        self._loading: dict[uuid.UUID, asyncio.Task[_State]] = {}

    async def check(self, principal: Principal) -> None:
        """401 when the principal's account is gone or its token was signed out."""
        if self.passes(principal):
            return
        user_id = principal.user_id
        loading = self._loading.get(user_id)
        if loading is None:
            loading = self._loading[user_id] = asyncio.create_task(self._load(user_id))
            loading.add_done_callback(lambda _: self._loading.pop(user_id, None))
        _verdict(principal, await asyncio.shield(loading))  # a caller who leaves lets others wait

    async def check_verified(self, principal: Principal) -> None:
        """With `REQUIRE_VERIFIED_EMAIL`, 403 until the account's email is verified (before
        registering a stream or uploading)."""
        if self.require_verified and not await queries.is_verified(self._pool, principal.user_id):
            raise Forbidden(
                "Confirm your email address first: follow the link in the mail we sent "
                "(POST /v1/users/me/email-verification sends another)"
            )

    def passes(self, principal: Principal) -> bool:
        """`check` from the remembered answer, without waiting: True when it passes, False
        when the account must be read first (then await `check`); 401 as `check`."""
        state = self._cache.get(principal.user_id)
        if state is None or time.monotonic() - state.checked_at > self._ttl:
            return False
        if not state.live or (state.cutoff is not None and principal.issued_at < state.cutoff):
            _verdict(principal, state)  # raises the 401 that says why
        return True

    async def _load(self, user_id: uuid.UUID) -> _State:
        generation = self._generation
        live, cutoff = await queries.token_state(self._pool, user_id)
        state = _State(time.monotonic(), live, cutoff.timestamp() if cutoff else None)
        if generation == self._generation:
            self._remember(user_id, state)
        return state

    def forget(self, user_id: uuid.UUID) -> None:
        """Drop the cached answer, so this node's next request reads the committed row."""
        self._generation += 1
        self._cache.pop(user_id, None)

    def _remember(self, user_id: uuid.UUID, state: _State) -> None:
        self._cache[user_id] = state
        self._cache.move_to_end(user_id)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)


async def sign_out_everywhere(conn: Executor, user_id: uuid.UUID, now: datetime) -> None:
    """End every session of the user, within the caller's transaction: refresh tokens are
    revoked and access tokens issued before now are refused (a node that cached the
    account's state notices within `DEFAULT_TTL`; call `AccountGate.forget` once it commits
    to make this node notice at once). Tokens issued from now on work (`iat` has
    millisecond precision)."""
    await tokens.revoke_user(conn, user_id, now)
    await queries.set_token_cutoff(conn, user_id, to_millis(time.time()))


def _verdict(principal: Principal, state: _State) -> None:
    if not state.live:
        raise Unauthenticated(GONE)
    if state.cutoff is not None and principal.issued_at < state.cutoff:
        raise Unauthenticated("This access token was signed out; log in again")


ACCOUNTS = web.AppKey("account_gate", AccountGate)
