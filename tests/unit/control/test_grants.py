"""The one signed-link format: `<user>.<valid from>.<expires>.<mac>`, byte for byte what
links already handed out carry; bound to its resource, user and start; hostile input
refused, never an exception. Then who a grant speaks for, on a real PostgreSQL: refused
once the account is deleted or signs out everywhere after the grant's start (to the
millisecond, like access tokens), and the access rules re-run for its user."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from control.accounts import AccountGate
from control.grants import (
    ACCOUNT_GONE,
    SIGNED_OUT,
    Grant,
    Grantee,
    Grantees,
    GrantSigner,
    Lapse,
)
from control.security import ROLE_SCOPES, Principal
from control.users import queries as users
from mediaserver.crypto import UrlSigner
from mediaserver.db import create_pool
from mediaserver.errors import Forbidden

SIGNER = GrantSigner(UrlSigner(b"k" * 32))
USER = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
STREAM = uuid.UUID("11111111-2222-3333-4444-555555555555")
START_MS = 1_749_556_230_123
EXPIRES = 1_749_560_430
#: Issued by the code this module replaced (`control.grantees.user_grant`).
GOLDEN = f"{USER.hex}.{START_MS}.{EXPIRES}.b9ef2b240d807df15a873f92dc536d13"


def play(stream_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"stream-play:{stream_id}:{user_id}:private:1"


RESOURCE_OF = functools.partial(play, STREAM)


def test_the_wire_format_is_that_of_links_already_handed_out() -> None:
    assert SIGNER.issue(RESOURCE_OF, Grantee(USER, START_MS), EXPIRES) == GOLDEN
    grant = Grant.parse(GOLDEN)
    assert grant == Grant(Grantee(USER, START_MS), EXPIRES, GOLDEN.split(".", 2)[2])
    assert str(grant) == GOLDEN
    assert SIGNER.verify(GOLDEN, RESOURCE_OF, EXPIRES) == grant


def test_a_grant_is_bound_to_its_resource_user_and_start_until_it_expires() -> None:
    grant = SIGNER.issue(RESOURCE_OF, Grantee(USER, START_MS), EXPIRES)
    other = uuid.uuid4()
    assert SIGNER.verify(grant, functools.partial(play, other), None) is None
    assert SIGNER.verify(grant.replace(USER.hex, other.hex), RESOURCE_OF, None) is None
    later = grant.replace(f".{START_MS}.", f".{START_MS + 1}.")
    assert SIGNER.verify(later, RESOURCE_OF, None) is None
    assert (
        SIGNER.verify(grant.replace(f".{EXPIRES}.", f".{EXPIRES + 1}."), RESOURCE_OF, None) is None
    )
    # Up to its expiry (to the second), not after; `None`: whenever it expires.
    assert SIGNER.verify(grant, RESOURCE_OF, EXPIRES) is not None
    assert SIGNER.verify(grant, RESOURCE_OF, EXPIRES + 0.001) is None
    found = SIGNER.verify(grant, RESOURCE_OF, None)
    assert found is not None and found.expired(EXPIRES + 1) and not found.expired(EXPIRES)


def test_a_grant_issued_to_a_token_starts_at_its_iat() -> None:
    token = Principal(USER, "a@example.com", "listener", frozenset(), "jti", 1_749_556_230.1234)
    assert Grantee.of(token) == Grantee(USER, 1_749_556_230_123)


def flip_last(grant: str) -> str:
    return grant[:-1] + ("1" if grant[-1] == "0" else "0")


@pytest.mark.parametrize(
    "mangle",
    [
        flip_last,  # another MAC
        lambda g: uuid.uuid4().hex + g[32:],  # another user
        lambda g: g.upper(),  # the user written otherwise
        lambda g: g.replace(".", ".0", 1),  # the same start, written otherwise
        lambda g: g + "\n",
        lambda g: g + ".0",
        lambda g: g.split(".", 1)[0] + ".\u00b2." + g.split(".", 2)[2],  # a non-ASCII digit
        lambda g: ".".join([*g.split(".")[:1], "9" * 40, *g.split(".")[2:]]),
        lambda g: ".".join([*g.split(".")[:2], "9" * 16, *g.split(".")[3:]]),
        lambda g: g.split(".", 1)[0],
        lambda g: g.rsplit(".", 1)[0],
        lambda g: "",
        lambda g: ".",
        lambda g: "\u00b2",
        lambda g: "nonsense",
        lambda g: f"{USER.hex}.\u00b2.{'0' * 32}",
        lambda g: f"{USER.hex}.1.2.3",
        lambda g: "\u00b2." + "0" * 32,
    ],
)
def test_anything_else_is_refused_without_an_error(mangle: Callable[[str], str]) -> None:
    grant = SIGNER.issue(RESOURCE_OF, Grantee(USER, START_MS), EXPIRES)
    assert SIGNER.verify(mangle(grant), RESOURCE_OF, None) is None
    assert SIGNER.verify(mangle(grant), RESOURCE_OF, 0) is None


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url)
    yield pool
    await pool.close()


async def account(pool: asyncpg.Pool, role: str = "listener") -> uuid.UUID:
    user_id: uuid.UUID = await pool.fetchval(
        "INSERT INTO users (email, name, password_hash, role) VALUES ($1, 'A', 'x', $2) "
        "RETURNING user_id",
        f"grantee-{uuid.uuid4().hex[:8]}@example.com",
        role,
    )
    return user_id


async def test_a_grant_speaks_for_its_account_as_a_token_of_it_would(pool: asyncpg.Pool) -> None:
    grantees = Grantees(pool, AccountGate(pool))
    user_id = await account(pool, "dj")
    holder = await grantees.principal(Grantee(user_id, int(time.time() * 1000)))
    assert isinstance(holder, Principal)
    assert (holder.user_id, holder.role) == (user_id, "dj")
    assert holder.scopes == frozenset(ROLE_SCOPES["dj"])


async def test_signing_out_refuses_grants_from_before_it_to_the_millisecond(
    pool: asyncpg.Pool,
) -> None:
    gate = AccountGate(pool)
    grantees = Grantees(pool, gate)
    user_id = await account(pool)
    cutoff_ms = 1_749_556_530_123
    async with pool.acquire() as conn:
        await users.set_token_cutoff(conn, user_id, cutoff_ms / 1000)
    gate.forget(user_id)
    assert await grantees.principal(Grantee(user_id, cutoff_ms - 1)) is Lapse.SIGNED_OUT
    assert isinstance(await grantees.principal(Grantee(user_id, cutoff_ms)), Principal)
    with pytest.raises(Forbidden) as refused:
        await grantees.require(Grantee(user_id, cutoff_ms - 1), "key", allow)
    assert refused.value.body() == {"error": SIGNED_OUT, "code": 403}
    await grantees.require(Grantee(user_id, cutoff_ms), "key", allow)


async def test_a_deleted_account_closes_its_grants(pool: asyncpg.Pool) -> None:
    gate = AccountGate(pool)
    grantees = Grantees(pool, gate)
    user_id = await account(pool)
    grantee = Grantee(user_id, int(time.time() * 1000) - 60_000)
    await grantees.require(grantee, "key", allow)
    async with pool.acquire() as conn:
        await users.soft_delete(conn, user_id)
    gate.forget(user_id)
    assert await grantees.principal(grantee) is Lapse.ACCOUNT_GONE
    with pytest.raises(Forbidden, match=ACCOUNT_GONE):
        await grantees.require(grantee, "other key", allow)


async def test_each_use_runs_the_access_rules_for_the_grants_user(pool: asyncpg.Pool) -> None:
    grantees = Grantees(pool, AccountGate(pool))
    user_id = await account(pool)
    grantee = Grantee(user_id, int(time.time() * 1000))
    seen: list[Principal] = []

    async def refuse(principal: Principal) -> None:
        seen.append(principal)
        raise Forbidden("Subscription required")

    with pytest.raises(Forbidden, match=r"^Subscription required$"):
        await grantees.require(grantee, ("stream", "private", True), refuse)
    assert [p.user_id for p in seen] == [user_id]
    # The answer is reused for the same rules (`ACCESS_TTL`); other rules are asked afresh.
    with pytest.raises(Forbidden, match=r"^Subscription required$"):
        await grantees.require(grantee, ("stream", "private", True), allow)
    await grantees.require(grantee, ("stream", "public", True), allow)
    assert len(seen) == 1


async def allow(principal: Principal) -> None:
    """An access check that lets everyone through."""
