"""Upload plans as a DJ meets them: set a plan, read the quota, what the store holds, and
the refusal of a month's upload too many (shared by the tracks' and uploads' quota tests)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from mediaserver.app import STORE
from tests.accounts import bearer

QUOTA = "/v1/users/me/quota"


async def set_plan(node: Any, admin: dict[str, Any], user_id: str, plan: str) -> dict[str, Any]:
    response = await node.patch(
        f"/v1/users/{user_id}", json={"upload_plan": plan}, headers=bearer(admin)
    )
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def quota(node: Any, headers: dict[str, str]) -> dict[str, Any]:
    response = await node.get(QUOTA, headers=headers)
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def stored(node: Any, user_id: str) -> list[str]:
    """The keys of the DJ's objects in the store, sorted."""
    return sorted([info.key async for info in node.app[STORE].list(f"uploads/audio/{user_id}/")])


def next_month(now: datetime) -> datetime:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


async def assert_month_used_up(refused: Any, uploads: int, plan: str) -> None:
    """`refused` is the 429 of an upload past the plan's `uploads` a month, telling when
    uploads open again (the first of next month, UTC) in its message and `Retry-After`."""
    now = datetime.now(UTC)
    assert refused.status == 429
    reset = next_month(now)
    assert await refused.json() == {
        "error": f"Upload quota exceeded: {uploads} uploads a month on the {plan} plan, all "
        f"used; uploads open again on {reset:%Y-%m-%d} (UTC).",
        "code": 429,
    }
    wait = int(refused.headers["Retry-After"])
    assert abs(wait - math.ceil((reset - now).total_seconds())) <= 5
