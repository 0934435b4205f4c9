"""`AccountGate` on a real PostgreSQL: deleted accounts and signed-out tokens are refused,
parallel requests share one read, and a read that raced a sign-out is not cached."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from control.accounts import AccountGate, sign_out_everywhere
from control.security import Principal
from control.users import queries
from mediaserver.db import create_pool
from mediaserver.errors import Unauthenticated


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url)
    yield pool
    await pool.close()


async def account(pool: asyncpg.Pool) -> uuid.UUID:
    user_id: uuid.UUID = await pool.fetchval(
        "INSERT INTO users (email, name, password_hash, role) VALUES ($1, 'A', 'x', 'dj') "
        "RETURNING user_id",
        f"gate-{uuid.uuid4().hex[:8]}@example.com",
    )
    return user_id


def token_of(user_id: uuid.UUID, issued_at: float) -> Principal:
    return Principal(user_id, "a@example.com", "dj", frozenset(), "jti", issued_at)


async def test_sign_out_refuses_earlier_tokens_only(pool: asyncpg.Pool) -> None:
    gate = AccountGate(pool, ttl=60)
    user_id = await account(pool)
    before = token_of(user_id, time.time() - 1)
    await gate.check(before)
    async with pool.acquire() as conn, conn.transaction():
        await sign_out_everywhere(conn, user_id, datetime.now(UTC))
    await gate.check(before)  # cached on this node until told
    gate.forget(user_id)
    with pytest.raises(Unauthenticated, match="signed out"):
        await gate.check(before)
    await gate.check(token_of(user_id, time.time()))


async def test_parallel_checks_share_one_read(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[uuid.UUID] = []
    real = queries.token_state

    async def counted(conn: asyncpg.Pool, user_id: uuid.UUID) -> tuple[bool, datetime | None]:
        reads.append(user_id)
        return await real(conn, user_id)

    monkeypatch.setattr(queries, "token_state", counted)
    gate = AccountGate(pool)
    user_id = await account(pool)
    await asyncio.gather(*(gate.check(token_of(user_id, time.time())) for _ in range(50)))
    assert reads == [user_id]


async def test_a_read_that_raced_a_sign_out_is_not_kept(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = await account(pool)
    gate = AccountGate(pool, ttl=60)
    real = queries.token_state
    reading, go_on = asyncio.Event(), asyncio.Event()

    async def slow(conn: asyncpg.Pool, uid: uuid.UUID) -> tuple[bool, datetime | None]:
        state = await real(conn, uid)  # read before the deletion commits
        reading.set()
        await go_on.wait()
        return state

    monkeypatch.setattr(queries, "token_state", slow)
    first = asyncio.create_task(gate.check(token_of(user_id, time.time())))
    await reading.wait()
    await pool.execute("UPDATE users SET deleted_at = now() WHERE user_id = $1", user_id)
    gate.forget(user_id)
    go_on.set()
    await first  # answered from the stale read, but not cached
    monkeypatch.setattr(queries, "token_state", real)
    with pytest.raises(Unauthenticated, match="no longer exists"):
        await gate.check(token_of(user_id, time.time()))
