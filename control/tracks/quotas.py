"""Per-plan upload quotas (issue 13; the tracks spec's "Limites par plan"). Each DJ has an
upload plan (`users.upload_plan`, set by an admin; `basic` by default) that bounds the size
and length of one file, the uploads a calendar month (UTC; deleted ones still count: the
upload was made) and the storage held (the sources of the DJ's live uploads plus their
tracks' renditions).

Both ways of uploading are held to the plan: `POST /v1/tracks` and `POST /v1/uploads/audio`
(the MP3s of playlists and podcast episodes). Both count toward "uploads a month", as what
a DJ uploads: the month's `uploads` rows are counted, and a track is one of them (its
`uploads` row has the track's id), so nothing is counted twice.

The settings stay the ceiling: the effective file limits are the smaller of the setting
(`TRACK_MAX_BYTES` and `TRACK_MAX_SECONDS` for tracks, `UPLOAD_MAX_BYTES` for
`/v1/uploads/audio`: `Ceiling`) and the plan's, so an operator can lower them for
everyone. Admins are exempt from the plans (the settings alone apply to them).

Refusals are 429 `Upload quota exceeded: …` / `Storage quota exceeded: …`: checked before
the body is read (a cheap refusal) and again, with the file's real size, in the transaction
that records the upload, the DJ's row locked so that two uploads at once cannot both pass.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from control.tracks.schemas import QuotaOut
from mediaserver.config import Settings
from mediaserver.db import Executor
from mediaserver.errors import ServiceError

PlanName = Literal["free", "basic", "pro", "artist"]
MB = 1024 * 1024
GB = 1024 * MB
TB = 1024 * GB


@dataclass(frozen=True, slots=True)
class Plan:
    max_bytes: int
    max_seconds: float  # math.inf: unlimited
    uploads_per_month: int
    storage_bytes: int


#: The spec's plans. Looked up at each use (tests may swap an entry).
PLANS: dict[str, Plan] = {
    "free": Plan(50 * MB, 6 * 60, 10, 1 * GB),
    "basic": Plan(100 * MB, 10 * 60, 50, 10 * GB),
    "pro": Plan(500 * MB, 30 * 60, 200, 100 * GB),
    "artist": Plan(1 * GB, math.inf, 1000, 1 * TB),
}


@dataclass(frozen=True, slots=True)
class Ceiling:
    """The settings' limits of one file, which no plan raises."""

    max_bytes: int
    max_seconds: float  # math.inf: the settings set none

    @classmethod
    def of_tracks(cls, settings: Settings) -> Ceiling:
        """`POST /v1/tracks`: `TRACK_MAX_BYTES`, `TRACK_MAX_SECONDS`."""
        return cls(settings.track_max_bytes, settings.track_max_seconds)

    @classmethod
    def of_uploads(cls, settings: Settings) -> Ceiling:
        """`POST /v1/uploads/audio`: `UPLOAD_MAX_BYTES` (an upload's length is its plan's
        alone: `Quota.max_seconds`)."""
        return cls(settings.upload_max_bytes, math.inf)


class QuotaExceeded(ServiceError):
    """429: the plan's monthly uploads or storage are used up (spec: UPLOAD_QUOTA_EXCEEDED)."""

    status = 429
    default_message = "Upload quota exceeded"


@dataclass(frozen=True, slots=True)
class Quota:
    """A DJ's plan, its effective limits and what is used of it."""

    plan: PlanName
    exempt: bool
    max_bytes: int
    max_seconds: float
    uploads_this_month: int
    uploads_per_month: int | None  # None: exempt
    storage_used: int
    storage_bytes: int | None  # None: exempt
    resets_at: datetime
    now: datetime

    def check(self, incoming: int = 0) -> None:
        """429 unless one more upload of `incoming` bytes fits the plan."""
        if self.exempt:
            return
        assert self.uploads_per_month is not None and self.storage_bytes is not None
        if self.uploads_this_month >= self.uploads_per_month:
            raise QuotaExceeded(
                f"Upload quota exceeded: {self.uploads_per_month} "
                f"upload{'' if self.uploads_per_month == 1 else 's'} a month on the "
                f"{self.plan} plan, all used; uploads open again on "
                f"{self.resets_at:%Y-%m-%d} (UTC).",
                headers={"Retry-After": str(self.retry_after())},
            )
        if self.storage_used + incoming > self.storage_bytes or (
            incoming == 0 and self.storage_used >= self.storage_bytes
        ):
            adding = f" and this file adds {size_text(incoming)}" if incoming else ""
            raise QuotaExceeded(
                f"Storage quota exceeded: the {self.plan} plan holds "
                f"{size_text(self.storage_bytes)}, {size_text(self.storage_used)} is used"
                f"{adding}; delete tracks to make room."
            )

    def retry_after(self) -> int:
        return max(1, math.ceil((self.resets_at - self.now).total_seconds()))


#: The month's uploads: `uploads` rows, tracks included (each is one), deleted ones too.
MONTHLY_USAGE = """
SELECT u.upload_plan,
       (SELECT count(*) FROM uploads up
         WHERE up.owner_id = u.user_id AND up.created_at >= $2) AS uploads,
       (SELECT coalesce(sum(up.size_bytes), 0) FROM uploads up
         WHERE up.owner_id = u.user_id AND up.deleted_at IS NULL)
     + (SELECT coalesce(sum(r.size_bytes), 0)
          FROM track_renditions r JOIN uploads up ON up.upload_id = r.track_id
         WHERE up.owner_id = u.user_id AND up.deleted_at IS NULL) AS storage
FROM users u WHERE u.user_id = $1
"""
LOCK_USER = "SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE"
PLAN_OF = "SELECT upload_plan, role = 'admin' AS admin FROM users WHERE user_id = $1"


async def quota_of(
    conn: Executor,
    ceiling: Ceiling,
    user_id: uuid.UUID,
    is_admin: bool,
    now: datetime,
    *,
    lock: bool = False,
) -> Quota:
    """The DJ's quota at `now`, its file limits under `ceiling`; `lock` (inside a
    transaction) holds their row until commit."""
    if lock:
        await conn.execute(LOCK_USER, user_id)
    month = month_start(now)
    row = await conn.fetchrow(MONTHLY_USAGE, user_id, month)
    name: PlanName = row["upload_plan"] if row is not None else "basic"
    plan = PLANS[name]
    ceiling_bytes, ceiling_seconds = ceiling.max_bytes, ceiling.max_seconds
    uploads = int(row["uploads"]) if row is not None else 0
    storage = int(row["storage"]) if row is not None else 0
    return Quota(
        plan=name,
        exempt=is_admin,
        max_bytes=ceiling_bytes if is_admin else min(ceiling_bytes, plan.max_bytes),
        max_seconds=ceiling_seconds if is_admin else min(ceiling_seconds, plan.max_seconds),
        uploads_this_month=uploads,
        uploads_per_month=None if is_admin else plan.uploads_per_month,
        storage_used=storage,
        storage_bytes=None if is_admin else plan.storage_bytes,
        resets_at=next_month(month),
        now=now,
    )


async def length_limit(conn: Executor, ceiling: Ceiling, user_id: uuid.UUID) -> tuple[str, float]:
    """The DJ's plan and the longest file it allows under `ceiling` (for an upload whose
    length is known only once it is processed: `POST /v1/uploads/audio`)."""
    row = await conn.fetchrow(PLAN_OF, user_id)
    name: PlanName = row["upload_plan"] if row is not None else "basic"
    if row is not None and row["admin"]:
        return name, ceiling.max_seconds
    return name, min(ceiling.max_seconds, PLANS[name].max_seconds)


def month_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def next_month(month: datetime) -> datetime:
    if month.month == 12:
        return datetime(month.year + 1, 1, 1, tzinfo=UTC)
    return datetime(month.year, month.month + 1, 1, tzinfo=UTC)


def size_text(size: int) -> str:
    """`1 GB`, `50 MB`, `1.5 MB` (binary units, as the settings' `100 MB`)."""
    for unit, name in ((TB, "TB"), (GB, "GB"), (MB, "MB")):
        if size >= unit:
            return f"{size / unit:.1f}".removesuffix(".0") + f" {name}"
    if size >= 1024:
        return f"{size / 1024:.1f}".removesuffix(".0") + " KB"
    return f"{size} bytes"


def example_refusals() -> tuple[str, str]:
    """The two refusals as a free DJ sees them (the OpenAPI document's examples)."""
    now = datetime(2025, 6, 14, 12, tzinfo=UTC)
    free = PLANS["free"]
    full = Quota(
        "free", False, free.max_bytes, free.max_seconds, free.uploads_per_month,
        free.uploads_per_month, 0, free.storage_bytes, next_month(month_start(now)), now,
    )  # fmt: skip
    messages = []
    for quota, incoming in ((full, 0), (replace(full, uploads_this_month=3,
                                                 storage_used=1000 * MB), 40 * MB)):  # fmt: skip
        try:
            quota.check(incoming)
        except QuotaExceeded as exc:
            messages.append(exc.message)
    return messages[0], messages[1]


def quota_out(quota: Quota) -> QuotaOut:
    return QuotaOut(
        upload_plan=quota.plan,
        exempt=quota.exempt,
        max_file_bytes=quota.max_bytes,
        max_duration_seconds=quota.max_seconds,
        uploads_this_month=quota.uploads_this_month,
        uploads_per_month=quota.uploads_per_month,
        storage_used_bytes=quota.storage_used,
        storage_bytes=quota.storage_bytes,
        month_resets_at=quota.resets_at,
    )
