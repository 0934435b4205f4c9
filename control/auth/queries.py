"""SQL of refresh tokens (stored as SHA-256 hashes, grouped in rotation families)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from mediaserver.db import Executor


@dataclass(frozen=True, slots=True)
class RefreshTokenRow:
    token_id: uuid.UUID
    user_id: uuid.UUID
    family_id: uuid.UUID
    expires_at: datetime
    revoked_at: datetime | None


INSERT = """
INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)
"""
# FOR UPDATE: two concurrent refreshes with the same token must not both rotate it.
LOCK_BY_HASH = """
SELECT token_id, user_id, family_id, expires_at, revoked_at FROM refresh_tokens
WHERE token_hash = $1 FOR UPDATE
"""
REVOKE = "UPDATE refresh_tokens SET revoked_at = $2 WHERE token_id = $1 AND revoked_at IS NULL"
REVOKE_FAMILY = (
    "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL"
)
REVOKE_USER = "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL"


async def insert(
    conn: Executor,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    token_hash: bytes,
    expires_at: datetime,
) -> None:
    await conn.execute(INSERT, user_id, family_id, token_hash, expires_at)


async def lock_by_hash(conn: Executor, token_hash: bytes) -> RefreshTokenRow | None:
    record = await conn.fetchrow(LOCK_BY_HASH, token_hash)
    return RefreshTokenRow(*record.values()) if record else None


async def revoke(conn: Executor, token_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(REVOKE, token_id, now)


async def revoke_family(conn: Executor, family_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(REVOKE_FAMILY, family_id, now)


async def revoke_user(conn: Executor, user_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(REVOKE_USER, user_id, now)


@dataclass(frozen=True, slots=True)
class AccountTokenRow:
    """A mailed password-reset or email-verification token."""

    user_id: uuid.UUID
    purpose: str
    email: str
    expires_at: datetime
    used_at: datetime | None


INSERT_MAILED = """
INSERT INTO account_tokens (token_hash, user_id, purpose, email, expires_at)
VALUES ($1, $2, $3, $4, $5)
"""
LOCK_MAILED = """
SELECT user_id, purpose, email, expires_at, used_at FROM account_tokens
WHERE token_hash = $1 AND purpose = $2 FOR UPDATE
"""
USE_MAILED = "UPDATE account_tokens SET used_at = $2 WHERE token_hash = $1"
# A reset spends every other reset link of the account too: only the newest mail matters
# and an older one found later in a leaked mailbox no longer works.
USE_USER_MAILED = """
UPDATE account_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL
"""


async def insert_account_token(
    conn: Executor,
    token_hash: bytes,
    user_id: uuid.UUID,
    purpose: str,
    email: str,
    expires_at: datetime,
) -> None:
    await conn.execute(INSERT_MAILED, token_hash, user_id, purpose, email, expires_at)


async def lock_account_token(
    conn: Executor, token_hash: bytes, purpose: str
) -> AccountTokenRow | None:
    record = await conn.fetchrow(LOCK_MAILED, token_hash, purpose)
    return AccountTokenRow(*record.values()) if record else None


async def use_account_token(conn: Executor, token_hash: bytes, now: datetime) -> None:
    await conn.execute(USE_MAILED, token_hash, now)


async def use_user_tokens(conn: Executor, user_id: uuid.UUID, purpose: str, now: datetime) -> None:
    await conn.execute(USE_USER_MAILED, user_id, purpose, now)
