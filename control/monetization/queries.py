"""SQL of monetization plans and subscriptions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from control.monetization.schemas import BillingInterval, PlanIn, SubscriptionStatus
from mediaserver.db import Executor


@dataclass(frozen=True, slots=True)
class PlanRow:
    plan_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    price_cents: int
    currency: str
    billing_interval: BillingInterval
    features: list[str]
    stripe_product_id: str
    stripe_price_id: str
    created_at: datetime
    platform_wide: bool


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    subscription_id: uuid.UUID
    user_id: uuid.UUID
    plan_id: uuid.UUID
    status: SubscriptionStatus
    stripe_subscription_id: str
    created_at: datetime
    expires_at: datetime
    canceled_at: datetime | None

    def status_at(self, now: datetime) -> SubscriptionStatus:
        """The status a client sees: an active row past its `expires_at` is expired."""
        if self.status == "active" and self.expires_at <= now:
            return "expired"
        return self.status


INSERT_PLAN = """
INSERT INTO monetization_plans (owner_id, name, price_cents, currency, billing_interval,
                                features, stripe_product_id, stripe_price_id, platform_wide)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING plan_id, owner_id, name, price_cents, currency, billing_interval, features,
       stripe_product_id, stripe_price_id, created_at, platform_wide
"""
PLAN_BY_ID = """
SELECT plan_id, owner_id, name, price_cents, currency, billing_interval, features,
       stripe_product_id, stripe_price_id, created_at, platform_wide
FROM monetization_plans WHERE plan_id = $1 AND deleted_at IS NULL
"""
PLAN_PAGE = """
SELECT plan_id, owner_id, name, price_cents, currency, billing_interval, features,
       stripe_product_id, stripe_price_id, created_at, platform_wide,
       count(*) OVER () AS total
FROM monetization_plans
WHERE deleted_at IS NULL AND ($3::uuid IS NULL OR owner_id = $3 OR platform_wide)
ORDER BY created_at, plan_id LIMIT $1 OFFSET $2
"""
# $1: the plans that open this owner's content (theirs, and the platform-wide ones).
PLAN_COUNT = """
SELECT count(*) FROM monetization_plans
WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR owner_id = $1 OR platform_wide)
"""

# A subscription opens the content of its plan's owner; a platform-wide plan (an admin's)
# opens everything.
HAS_ACTIVE = """
SELECT EXISTS (SELECT 1 FROM subscriptions s
               JOIN monetization_plans p ON p.plan_id = s.plan_id
               WHERE s.user_id = $1 AND s.status = 'active' AND s.expires_at > $3
                 AND (p.owner_id = $2 OR p.platform_wide))
"""
HAS_ACTIVE_FOR_PLAN = """
SELECT EXISTS (SELECT 1 FROM subscriptions
               WHERE user_id = $1 AND plan_id = $2 AND status = 'active' AND expires_at > $3)
"""
# Frees the partial unique index on active (user_id, plan_id) for a renewed subscription.
EXPIRE_STALE = """
UPDATE subscriptions SET status = 'expired'
WHERE user_id = $1 AND plan_id = $2 AND status = 'active' AND expires_at <= $3
"""
INSERT_SUBSCRIPTION = """
INSERT INTO subscriptions (user_id, plan_id, status, stripe_subscription_id, created_at,
                           expires_at)
VALUES ($1, $2, 'active', $3, $4, $5)
RETURNING subscription_id, user_id, plan_id, status, stripe_subscription_id, created_at,
       expires_at, canceled_at
"""
SUBSCRIPTION_OF_USER = """
SELECT subscription_id, user_id, plan_id, status, stripe_subscription_id, created_at,
       expires_at, canceled_at
FROM subscriptions WHERE subscription_id = $1 AND user_id = $2
"""
SUBSCRIPTION_PAGE = """
SELECT subscription_id, user_id, plan_id, status, stripe_subscription_id, created_at,
       expires_at, canceled_at, count(*) OVER () AS total
FROM subscriptions WHERE user_id = $1
ORDER BY created_at DESC, subscription_id DESC LIMIT $2 OFFSET $3
"""
SUBSCRIPTION_COUNT = "SELECT count(*) FROM subscriptions WHERE user_id = $1"
EXTEND_BY_EXTERNAL = """
UPDATE subscriptions SET expires_at = greatest(expires_at, $2)
WHERE stripe_subscription_id = $1 AND status = 'active'
"""
END_BY_EXTERNAL = """
UPDATE subscriptions SET status = 'canceled', canceled_at = $2
WHERE stripe_subscription_id = $1 AND status = 'active'
"""
# An account deleted: its plans can no longer be bought, and the active subscriptions to
# them, or held by it, end. The provider's ids come back to be cancelled there too.
RETIRE_OWNED_PLANS = """
UPDATE monetization_plans SET deleted_at = $2 WHERE owner_id = $1 AND deleted_at IS NULL
"""
END_ACCOUNT_SUBSCRIPTIONS = """
UPDATE subscriptions SET status = 'canceled', canceled_at = $2
WHERE status = 'active'
  AND (user_id = $1 OR plan_id IN (SELECT plan_id FROM monetization_plans WHERE owner_id = $1))
RETURNING stripe_subscription_id
"""
CANCEL = """
UPDATE subscriptions SET status = 'canceled', canceled_at = $2
WHERE subscription_id = $1 AND status = 'active'
RETURNING subscription_id, user_id, plan_id, status, stripe_subscription_id, created_at,
       expires_at, canceled_at
"""


def _plan(record: asyncpg.Record | None) -> PlanRow | None:
    if record is None:
        return None
    return PlanRow(*(record[f.name] for f in fields(PlanRow)))


def _subscription(record: asyncpg.Record | None) -> SubscriptionRow | None:
    if record is None:
        return None
    return SubscriptionRow(*(record[f.name] for f in fields(SubscriptionRow)))


async def insert_plan(
    conn: Executor,
    owner_id: uuid.UUID,
    plan: PlanIn,
    product_id: str,
    price_id: str,
    platform_wide: bool,
) -> PlanRow:
    record = await conn.fetchrow(
        INSERT_PLAN,
        owner_id,
        plan.name,
        plan.price_cents,
        plan.currency,
        plan.billing_interval,
        plan.features,
        product_id,
        price_id,
        platform_wide,
    )
    row = _plan(record)
    assert row is not None
    return row


async def plan_by_id(conn: Executor, plan_id: uuid.UUID) -> PlanRow | None:
    return _plan(await conn.fetchrow(PLAN_BY_ID, plan_id))


async def plan_page(
    conn: Executor, limit: int, offset: int, owner_id: uuid.UUID | None = None
) -> tuple[list[PlanRow], int]:
    records = await conn.fetch(PLAN_PAGE, limit, offset, owner_id)
    if not records:
        return [], int(await conn.fetchval(PLAN_COUNT, owner_id))
    return [r for r in map(_plan, records) if r is not None], int(records[0]["total"])


async def has_active(
    conn: Executor, user_id: uuid.UUID, owner_id: uuid.UUID, now: datetime
) -> bool:
    return bool(await conn.fetchval(HAS_ACTIVE, user_id, owner_id, now))


async def has_active_for_plan(
    conn: Executor, user_id: uuid.UUID, plan_id: uuid.UUID, now: datetime
) -> bool:
    return bool(await conn.fetchval(HAS_ACTIVE_FOR_PLAN, user_id, plan_id, now))


async def expire_stale(
    conn: Executor, user_id: uuid.UUID, plan_id: uuid.UUID, now: datetime
) -> None:
    await conn.execute(EXPIRE_STALE, user_id, plan_id, now)


async def insert_subscription(
    conn: Executor,
    user_id: uuid.UUID,
    plan_id: uuid.UUID,
    stripe_subscription_id: str,
    now: datetime,
    expires_at: datetime,
) -> SubscriptionRow:
    record = await conn.fetchrow(
        INSERT_SUBSCRIPTION, user_id, plan_id, stripe_subscription_id, now, expires_at
    )
    row = _subscription(record)
    assert row is not None
    return row


async def subscription_of_user(
    conn: Executor, subscription_id: uuid.UUID, user_id: uuid.UUID
) -> SubscriptionRow | None:
    return _subscription(await conn.fetchrow(SUBSCRIPTION_OF_USER, subscription_id, user_id))


async def subscription_page(
    conn: Executor, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[SubscriptionRow], int]:
    records = await conn.fetch(SUBSCRIPTION_PAGE, user_id, limit, offset)
    if not records:
        return [], int(await conn.fetchval(SUBSCRIPTION_COUNT, user_id))
    return [r for r in map(_subscription, records) if r is not None], int(records[0]["total"])


async def retire_account(conn: Executor, user_id: uuid.UUID, now: datetime) -> list[str]:
    """Retire the account's plans and end its and their subscriptions; the provider ids
    of the subscriptions ended."""
    await conn.execute(RETIRE_OWNED_PLANS, user_id, now)
    records = await conn.fetch(END_ACCOUNT_SUBSCRIPTIONS, user_id, now)
    return [r["stripe_subscription_id"] for r in records]


async def cancel(
    conn: Executor, subscription_id: uuid.UUID, now: datetime
) -> SubscriptionRow | None:
    """Cancel an active subscription; None when it was no longer active."""
    return _subscription(await conn.fetchrow(CANCEL, subscription_id, now))


async def extend_by_external(conn: Executor, stripe_subscription_id: str, until: datetime) -> bool:
    """A renewal paid for by the provider: the active subscription lasts until `until`."""
    result = await conn.execute(EXTEND_BY_EXTERNAL, stripe_subscription_id, until)
    return result != "UPDATE 0"


async def end_by_external(conn: Executor, stripe_subscription_id: str, now: datetime) -> bool:
    """The provider ended the subscription: it is canceled as of `now`."""
    result = await conn.execute(END_BY_EXTERNAL, stripe_subscription_id, now)
    return result != "UPDATE 0"
