"""SQL of uploaded audio."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from control.uploads.schemas import UploadStatus
from hls.vod import MANIFEST_NAME
from mediaserver.db import Executor


@dataclass(frozen=True, slots=True)
class UploadRow:
    """One upload. `source_key` and `hls_prefix` are object-store keys built from the id."""

    upload_id: uuid.UUID
    owner_id: uuid.UUID
    filename: str
    title: str
    artist: str | None
    content_type: str
    size_bytes: int
    duration_seconds: float | None
    bitrate_kbps: int | None
    status: UploadStatus
    error_message: str | None
    source_key: str
    hls_prefix: str
    created_at: datetime
    completed_at: datetime | None
    deleted_at: datetime | None

    @property
    def manifest_key(self) -> str:
        return f"{self.hls_prefix}/{MANIFEST_NAME}"

    @property
    def ready(self) -> bool:
        return self.status == "ready" and self.deleted_at is None


@dataclass(frozen=True, slots=True)
class NewUpload:
    upload_id: uuid.UUID
    owner_id: uuid.UUID
    filename: str
    title: str
    artist: str | None
    content_type: str
    size_bytes: int
    source_key: str
    hls_prefix: str
    created_at: datetime


INSERT = """
INSERT INTO uploads (upload_id, owner_id, filename, title, artist, content_type, size_bytes,
                     source_key, hls_prefix, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING upload_id, owner_id, filename, title, artist, content_type, size_bytes,
       duration_seconds, bitrate_kbps, status, error_message, source_key, hls_prefix,
       created_at, completed_at, deleted_at
"""
BY_ID = """
SELECT upload_id, owner_id, filename, title, artist, content_type, size_bytes,
       duration_seconds, bitrate_kbps, status, error_message, source_key, hls_prefix,
       created_at, completed_at, deleted_at
FROM uploads WHERE upload_id = $1
"""
OWNED = """
SELECT upload_id, owner_id, filename, title, artist, content_type, size_bytes,
       duration_seconds, bitrate_kbps, status, error_message, source_key, hls_prefix,
       created_at, completed_at, deleted_at,
       count(*) OVER () AS total
FROM uploads WHERE owner_id = $1 AND deleted_at IS NULL
ORDER BY created_at DESC, upload_id DESC LIMIT $2 OFFSET $3
"""
OWNED_COUNT = "SELECT count(*) FROM uploads WHERE owner_id = $1 AND deleted_at IS NULL"
MARK_READY = """
UPDATE uploads SET status = 'ready', duration_seconds = $2, bitrate_kbps = $3,
       error_message = NULL, completed_at = $4
WHERE upload_id = $1 AND status = 'processing' AND deleted_at IS NULL
"""
MARK_FAILED = """
UPDATE uploads SET status = 'failed', error_message = $2, completed_at = $3
WHERE upload_id = $1 AND status = 'processing'
"""
SOFT_DELETE = """
UPDATE uploads SET deleted_at = $2 WHERE upload_id = $1 AND deleted_at IS NULL
"""

_NAMES = tuple(f.name for f in fields(UploadRow))


def _row(record: asyncpg.Record | None) -> UploadRow | None:
    if record is None:
        return None
    return UploadRow(*(record[name] for name in _NAMES))


async def insert(conn: Executor, new: NewUpload) -> UploadRow:
    n = new
    record = await conn.fetchrow(
        INSERT,
        n.upload_id,
        n.owner_id,
        n.filename,
        n.title,
        n.artist,
        n.content_type,
        n.size_bytes,
        n.source_key,
        n.hls_prefix,
        n.created_at,
    )
    row = _row(record)
    assert row is not None
    return row


async def by_id(conn: Executor, upload_id: uuid.UUID) -> UploadRow | None:
    """The upload, deleted or not."""
    return _row(await conn.fetchrow(BY_ID, upload_id))


async def owned(
    conn: Executor, owner_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[UploadRow], int]:
    records = await conn.fetch(OWNED, owner_id, limit, offset)
    if not records:
        return [], int(await conn.fetchval(OWNED_COUNT, owner_id))
    return [r for r in map(_row, records) if r is not None], int(records[0]["total"])


async def mark_ready(
    conn: Executor,
    upload_id: uuid.UUID,
    duration_seconds: float,
    bitrate_kbps: int,
    now: datetime,
) -> bool:
    """False when the upload was deleted (or finished) meanwhile."""
    status = await conn.execute(MARK_READY, upload_id, duration_seconds, bitrate_kbps, now)
    return str(status) == "UPDATE 1"


async def mark_failed(conn: Executor, upload_id: uuid.UUID, message: str, now: datetime) -> None:
    await conn.execute(MARK_FAILED, upload_id, message, now)


async def soft_delete(conn: Executor, upload_id: uuid.UUID, now: datetime) -> bool:
    return str(await conn.execute(SOFT_DELETE, upload_id, now)) == "UPDATE 1"
