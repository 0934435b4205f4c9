"""SQL of custom domains."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from control.domains.schemas import TlsStatus, VerificationStatus
from mediaserver.db import Executor


@dataclass(frozen=True, slots=True)
class DomainRow:
    domain_id: uuid.UUID
    owner_id: uuid.UUID
    hostname: str
    podcast_id: uuid.UUID | None
    status: VerificationStatus
    tls_status: TlsStatus
    dns_challenge_record: str
    created_at: datetime
    verified_at: datetime | None
    deleted_at: datetime | None


INSERT = """
INSERT INTO domains (owner_id, hostname, dns_challenge_record, created_at)
VALUES ($1, $2, $3, $4)
RETURNING domain_id, owner_id, hostname, podcast_id, status, tls_status, dns_challenge_record,
       created_at, verified_at, deleted_at
"""
BY_ID = """
SELECT domain_id, owner_id, hostname, podcast_id, status, tls_status, dns_challenge_record,
       created_at, verified_at, deleted_at
FROM domains WHERE domain_id = $1 AND deleted_at IS NULL
"""
BY_HOSTNAME = """
SELECT domain_id, owner_id, hostname, podcast_id, status, tls_status, dns_challenge_record,
       created_at, verified_at, deleted_at
FROM domains WHERE hostname = $1 AND deleted_at IS NULL
"""
BY_HOSTNAME_FOR_UPDATE = BY_HOSTNAME + "FOR UPDATE\n"
OWNED = """
SELECT domain_id, owner_id, hostname, podcast_id, status, tls_status, dns_challenge_record,
       created_at, verified_at, deleted_at, count(*) OVER () AS total
FROM domains WHERE owner_id = $1 AND deleted_at IS NULL
ORDER BY created_at DESC, domain_id DESC LIMIT $2 OFFSET $3
"""
OWNED_COUNT = "SELECT count(*) FROM domains WHERE owner_id = $1 AND deleted_at IS NULL"
# Only ever moves forward (pending → verified, pending → issued).
SET_STATUS = """
UPDATE domains SET status = $2, tls_status = $3, verified_at = coalesce(verified_at, $4)
WHERE domain_id = $1 AND deleted_at IS NULL
RETURNING domain_id, owner_id, hostname, podcast_id, status, tls_status, dns_challenge_record,
       created_at, verified_at, deleted_at
"""
SET_PODCAST = "UPDATE domains SET podcast_id = $2 WHERE hostname = $1 AND deleted_at IS NULL"
DELETE = "UPDATE domains SET deleted_at = $2 WHERE domain_id = $1 AND deleted_at IS NULL"
# The podcast a request for `Host: $1` is served: verified, attached, podcast not deleted.
SERVED_PODCAST = """
SELECT p.podcast_id FROM domains d
JOIN podcasts p ON p.podcast_id = d.podcast_id AND p.deleted_at IS NULL
    AND p.custom_domain = d.hostname
WHERE d.hostname = $1 AND d.deleted_at IS NULL AND d.status = 'verified'
"""


def _row(record: asyncpg.Record | None) -> DomainRow | None:
    if record is None:
        return None
    return DomainRow(*(record[f.name] for f in fields(DomainRow)))


async def insert(
    conn: Executor, owner_id: uuid.UUID, hostname: str, token: str, now: datetime
) -> DomainRow:
    row = _row(await conn.fetchrow(INSERT, owner_id, hostname, token, now))
    assert row is not None
    return row


async def by_id(conn: Executor, domain_id: uuid.UUID) -> DomainRow | None:
    return _row(await conn.fetchrow(BY_ID, domain_id))


async def by_hostname(conn: Executor, hostname: str, *, lock: bool = False) -> DomainRow | None:
    return _row(await conn.fetchrow(BY_HOSTNAME_FOR_UPDATE if lock else BY_HOSTNAME, hostname))


async def owned(
    conn: Executor, owner_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[DomainRow], int]:
    records = await conn.fetch(OWNED, owner_id, limit, offset)
    if not records:
        return [], int(await conn.fetchval(OWNED_COUNT, owner_id))
    return [r for r in map(_row, records) if r is not None], int(records[0]["total"])


async def set_status(
    conn: Executor, domain_id: uuid.UUID, status: str, tls_status: str, verified_at: datetime
) -> DomainRow | None:
    return _row(await conn.fetchrow(SET_STATUS, domain_id, status, tls_status, verified_at))


async def set_podcast(conn: Executor, hostname: str, podcast_id: uuid.UUID | None) -> None:
    await conn.execute(SET_PODCAST, hostname, podcast_id)


async def delete(conn: Executor, domain_id: uuid.UUID, now: datetime) -> bool:
    return str(await conn.execute(DELETE, domain_id, now)) == "UPDATE 1"


async def served_podcast(conn: Executor, hostname: str) -> uuid.UUID | None:
    podcast_id: uuid.UUID | None = await conn.fetchval(SERVED_PODCAST, hostname)
    return podcast_id
