"""SQL of the users table."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from control.security import Role
from control.users.schemas import UploadPlan
from mediaserver.db import Executor


@dataclass(frozen=True, slots=True)
class UserRow:
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    password_hash: str
    created_at: datetime
    status: str = "active"
    email_verified_at: datetime | None = None
    upload_plan: UploadPlan = "basic"

    @property
    def active(self) -> bool:
        return self.status == "active"


INSERT = """
INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, $4)
RETURNING user_id, email, name, role, password_hash, created_at, status, email_verified_at,
       upload_plan
"""
BY_EMAIL = """
SELECT user_id, email, name, role, password_hash, created_at, status, email_verified_at,
       upload_plan
FROM users
WHERE lower(email) = lower($1) AND deleted_at IS NULL
"""
BY_ID = """
SELECT user_id, email, name, role, password_hash, created_at, status, email_verified_at,
       upload_plan
FROM users
WHERE user_id = $1 AND deleted_at IS NULL
"""
PAGE = """
SELECT user_id, email, name, role, password_hash, created_at, status, email_verified_at,
       upload_plan,
       count(*) OVER () AS total
FROM users WHERE deleted_at IS NULL
ORDER BY created_at, user_id LIMIT $1 OFFSET $2
"""
COUNT = "SELECT count(*) FROM users WHERE deleted_at IS NULL"
UPDATE = """
UPDATE users SET name = coalesce($2, name), password_hash = coalesce($3, password_hash),
       updated_at = now()
WHERE user_id = $1 AND deleted_at IS NULL
RETURNING user_id, email, name, role, password_hash, created_at, status, email_verified_at,
       upload_plan
"""
SET_ROLE = """
UPDATE users SET role = $2, password_hash = $3, name = coalesce($4, name), updated_at = now()
WHERE user_id = $1
RETURNING user_id, email, name, role, password_hash, created_at, status, email_verified_at,
       upload_plan
"""
# An admin's change; FOR UPDATE in LOCK_BY_ID keeps two admins' changes in order.
LOCK_BY_ID = """
SELECT user_id, email, name, role, password_hash, created_at, status, email_verified_at,
       upload_plan
FROM users WHERE user_id = $1 AND deleted_at IS NULL FOR UPDATE
"""
ADMIN_UPDATE = """
UPDATE users SET status = coalesce($2, status), role = coalesce($3, role),
       name = coalesce($4, name), upload_plan = coalesce($5, upload_plan), updated_at = now()
WHERE user_id = $1 AND deleted_at IS NULL
RETURNING user_id, email, name, role, password_hash, created_at, status, email_verified_at,
       upload_plan
"""
# Other live, active admins: the last one may not be disabled, demoted or deleted. Locked,
# so two admins demoting each other at once cannot both succeed.
OTHER_ACTIVE_ADMINS = """
SELECT count(*) FROM (SELECT 1 FROM users
  WHERE role = 'admin' AND status = 'active' AND deleted_at IS NULL AND user_id <> $1
  FOR UPDATE) AS admins
"""
STORE_NEW_HASH = """
UPDATE users SET password_hash = $2, updated_at = now() WHERE user_id = $1 AND deleted_at IS NULL
"""
MARK_VERIFIED = """
UPDATE users SET email_verified_at = coalesce(email_verified_at, now())
WHERE user_id = $1 AND lower(email) = lower($2) AND deleted_at IS NULL
"""
IS_VERIFIED = """
SELECT email_verified_at IS NOT NULL FROM users WHERE user_id = $1 AND deleted_at IS NULL
"""
# Deletion keeps the row (ownership, history) but nothing that identifies the person; the
# email is replaced so it can be registered again.
ANONYMISE = """
UPDATE users SET deleted_at = now(), email = 'deleted-' || user_id || '@invalid',
       name = 'Deleted user', password_hash = '!', updated_at = now()
WHERE user_id = $1 AND deleted_at IS NULL
"""
SOFT_DELETE = "UPDATE users SET deleted_at = now() WHERE user_id = $1 AND deleted_at IS NULL"
# A disabled account is not live: its tokens are refused like a deleted one's.
ACCOUNT_STATE = """
SELECT deleted_at IS NULL AND status = 'active' AS live, tokens_valid_after FROM users
WHERE user_id = $1
"""
SET_SIGNOUT_CUTOFF = "UPDATE users SET tokens_valid_after = to_timestamp($2) WHERE user_id = $1"


def _row(record: asyncpg.Record | None) -> UserRow | None:
    if record is None:
        return None
    return UserRow(
        *(
            record[k]
            for k in (
                "user_id",
                "email",
                "name",
                "role",
                "password_hash",
                "created_at",
                "status",
                "email_verified_at",
                "upload_plan",
            )
        )
    )


async def insert(conn: Executor, email: str, name: str, password_hash: str, role: str) -> UserRow:
    row = _row(await conn.fetchrow(INSERT, email, name, password_hash, role))
    assert row is not None
    return row


async def by_email(conn: Executor, email: str) -> UserRow | None:
    return _row(await conn.fetchrow(BY_EMAIL, email))


async def by_id(conn: Executor, user_id: uuid.UUID) -> UserRow | None:
    return _row(await conn.fetchrow(BY_ID, user_id))


async def page(conn: Executor, limit: int, offset: int) -> tuple[list[UserRow], int]:
    records = await conn.fetch(PAGE, limit, offset)
    if not records:
        return [], int(await conn.fetchval(COUNT))
    return [r for r in map(_row, records) if r is not None], int(records[0]["total"])


async def update(
    conn: Executor, user_id: uuid.UUID, name: str | None, password_hash: str | None
) -> UserRow | None:
    return _row(await conn.fetchrow(UPDATE, user_id, name, password_hash))


async def set_role(
    conn: Executor, user_id: uuid.UUID, role: str, password_hash: str, name: str | None
) -> UserRow:
    row = _row(await conn.fetchrow(SET_ROLE, user_id, role, password_hash, name))
    assert row is not None
    return row


async def soft_delete(conn: Executor, user_id: uuid.UUID) -> bool:
    return str(await conn.execute(SOFT_DELETE, user_id)) == "UPDATE 1"


async def token_state(conn: Executor, user_id: uuid.UUID) -> tuple[bool, datetime | None]:
    """(account is live, cutoff of its access tokens); an unknown id is not live."""
    row = await conn.fetchrow(ACCOUNT_STATE, user_id)
    if row is None:
        return False, None
    return bool(row["live"]), row["tokens_valid_after"]


async def set_token_cutoff(conn: Executor, user_id: uuid.UUID, epoch_seconds: float) -> None:
    await conn.execute(SET_SIGNOUT_CUTOFF, user_id, epoch_seconds)


async def lock_by_id(conn: Executor, user_id: uuid.UUID) -> UserRow | None:
    return _row(await conn.fetchrow(LOCK_BY_ID, user_id))


async def admin_update(
    conn: Executor,
    user_id: uuid.UUID,
    status: str | None,
    role: str | None,
    name: str | None,
    upload_plan: str | None = None,
) -> UserRow | None:
    return _row(await conn.fetchrow(ADMIN_UPDATE, user_id, status, role, name, upload_plan))


async def other_active_admins(conn: Executor, user_id: uuid.UUID) -> int:
    return int(await conn.fetchval(OTHER_ACTIVE_ADMINS, user_id))


async def set_password(conn: Executor, user_id: uuid.UUID, password_hash: str) -> bool:
    return str(await conn.execute(STORE_NEW_HASH, user_id, password_hash)) == "UPDATE 1"


async def mark_verified(conn: Executor, user_id: uuid.UUID, email: str) -> bool:
    """False when the account is gone or its email is no longer `email`."""
    return str(await conn.execute(MARK_VERIFIED, user_id, email)) == "UPDATE 1"


async def is_verified(conn: Executor, user_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval(IS_VERIFIED, user_id))


async def anonymise(conn: Executor, user_id: uuid.UUID) -> bool:
    return str(await conn.execute(ANONYMISE, user_id)) == "UPDATE 1"


INSERT_AUDIT = """
INSERT INTO audit_log (actor_id, action, target_id, details, ip) VALUES ($1, $2, $3, $4, $5)
"""
AUDIT_PAGE = """
SELECT audit_id, actor_id, action, target_id, details, ip, created_at,
       count(*) OVER () AS total
FROM audit_log ORDER BY created_at DESC, audit_id DESC LIMIT $1 OFFSET $2
"""
AUDIT_COUNT = "SELECT count(*) FROM audit_log"


@dataclass(frozen=True, slots=True)
class AuditRow:
    audit_id: int
    actor_id: uuid.UUID | None
    action: str
    target_id: uuid.UUID | None
    details: dict[str, object]
    ip: str | None
    created_at: datetime


async def audit(
    conn: Executor,
    actor_id: uuid.UUID | None,
    action: str,
    target_id: uuid.UUID | None,
    details: Mapping[str, object],
    ip: str | None,
) -> None:
    await conn.execute(INSERT_AUDIT, actor_id, action, target_id, details, ip)


async def audit_page(conn: Executor, limit: int, offset: int) -> tuple[list[AuditRow], int]:
    records = await conn.fetch(AUDIT_PAGE, limit, offset)
    if not records:
        return [], int(await conn.fetchval(AUDIT_COUNT))
    names = [f.name for f in fields(AuditRow)]
    rows = [AuditRow(*(r[k] for k in names)) for r in records]
    return rows, int(records[0]["total"])
