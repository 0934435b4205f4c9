"""Whether an access token still speaks for a live account.

A JWT stays valid until it expires, so on its own a deleted account, or one whose password
was changed because it leaked, would keep working for up to a day. `AccountGate` checks
each authenticated request against the account's row: deleted → 401, token issued before
the account's cutoff (`users.tokens_valid_after`) → 401. Answers are cached per user for
`ttl` seconds, so a busy caller costs one query per `ttl`; a change made through this node
takes effect at once, one made through another node within `ttl`.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from control.security import Principal, to_millis
from control.users import queries
from mediaserver.db import Executor
from mediaserver.errors import Unauthenticated

DEFAULT_TTL = 5.0
MAX_CACHED = 100_000


@dataclass(frozen=True, slots=True)
class _State:
    checked_at: float  # monotonic
    live: bool
    cutoff: float | None  # epoch seconds; tokens issued before it are refused


class AccountGate:
    """Refuses tokens of deleted accounts and tokens older than the account's cutoff."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = DEFAULT_TTL) -> None:
        self._pool = pool
        self._ttl = ttl
        self._cache: OrderedDict[uuid.UUID, _State] = OrderedDict()

    async def check(self, principal: Principal) -> None:
        state = self._cache.get(principal.user_id)
        now = time.monotonic()
        if state is None or now - state.checked_at > self._ttl:
            live, cutoff = await queries.token_state(self._pool, principal.user_id)
            state = _State(now, live, cutoff.timestamp() if cutoff is not None else None)
            self._remember(principal.user_id, state)
        if not state.live:
            raise Unauthenticated("This account no longer exists")
        if state.cutoff is not None and principal.issued_at < state.cutoff:
            raise Unauthenticated("This access token was signed out; log in again")

    async def sign_out_everywhere(self, conn: Executor, user_id: uuid.UUID) -> None:
        """Refuse every access token issued to the user before now, within the caller's
        transaction; call `forget` once it commits. Tokens issued from now on still work
        (`iat` has millisecond precision)."""
        await queries.set_token_cutoff(conn, user_id, to_millis(time.time()))

    def forget(self, user_id: uuid.UUID) -> None:
        """Drop the cached answer, so this node's next request reads the committed row."""
        self._cache.pop(user_id, None)

    def _remember(self, user_id: uuid.UUID, state: _State) -> None:
        self._cache[user_id] = state
        self._cache.move_to_end(user_id)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)


ACCOUNTS = web.AppKey("account_gate", AccountGate)
