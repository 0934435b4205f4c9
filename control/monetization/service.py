"""Subscription plans, subscriptions (backlog US-6.1, US-6.2) and the paywall (US-6.3)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

import asyncpg
from aiohttp import web

from control.monetization import queries
from control.monetization.payments import (
    Cancellation,
    PaymentDeclined,
    PaymentProvider,
    Renewal,
)
from control.monetization.schemas import (
    NO_PLANS,
    NO_SUBSCRIPTIONS,
    PlanIn,
    PlanList,
    PlanListQuery,
    PlanOut,
    SubscribeIn,
    SubscriptionList,
    SubscriptionOut,
    WebhookOut,
)
from control.schemas import PageQuery
from control.security import Principal
from mediaserver.clock import Clock, utcnow
from mediaserver.errors import (
    Conflict,
    InvalidInput,
    NotConfigured,
    NotFound,
    PaymentRequired,
    SubscriptionRequired,
)

#: Backlog US-6.2: `expires_at = now() + 30 days`, whatever the plan's billing interval.
SUBSCRIPTION_PERIOD = timedelta(days=30)
#: What every plan and subscription route answers (503) on a node without a provider.
NO_PROVIDER = "Payments are not configured (PAYMENT_PROVIDER)"


def plan_out(row: queries.PlanRow) -> PlanOut:
    return PlanOut.model_validate(row, from_attributes=True)


def subscription_out(row: queries.SubscriptionRow, now: datetime) -> SubscriptionOut:
    return SubscriptionOut(
        subscription_id=row.subscription_id,
        plan_id=row.plan_id,
        status=row.status_at(now),
        stripe_subscription_id=row.stripe_subscription_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        canceled_at=row.canceled_at,
    )


log = logging.getLogger(__name__)


class MonetizationService:
    """Plans and subscriptions, with the payment provider behind a narrow interface.
    Without a provider (`PAYMENT_PROVIDER` unset) every method raises `NotConfigured`:
    nothing is sold that nobody charges for. The paywall (`PaywallService`) still reads
    the subscriptions stored earlier."""

    def __init__(
        self, pool: asyncpg.Pool, payments: PaymentProvider | None, clock: Clock = utcnow
    ) -> None:
        self._pool = pool
        self._provider = payments
        self._clock = clock

    def _payments(self) -> PaymentProvider:
        if self._provider is None:
            raise NotConfigured(NO_PROVIDER)
        return self._provider

    async def create_plan(self, principal: Principal, body: PlanIn) -> PlanOut:
        """Register the product and price with the provider, then store the plan."""
        product_id, price_id = await self._payments().create_product(
            body.name, body.price_cents, body.currency, body.billing_interval
        )
        row = await queries.insert_plan(
            self._pool, principal.user_id, body, product_id, price_id, principal.is_admin
        )
        return plan_out(row)

    async def list_plans(self, page: PlanListQuery) -> PlanList:
        """Every plan, oldest first; with `owner_id`, the plans that open that owner's
        content (theirs and the platform-wide ones)."""
        self._payments()  # 503 without a provider
        rows, total = await queries.plan_page(self._pool, page.per_page, page.offset, page.owner_id)
        return PlanList(
            plans=[plan_out(r) for r in rows],
            page=page.page,
            per_page=page.per_page,
            total=total,
            message=NO_PLANS if total == 0 else None,
        )

    async def subscribe(self, principal: Principal, body: SubscribeIn) -> SubscriptionOut:
        """Charge through the provider and store an active subscription for 30 days.
        400 for an unknown plan, 402 when the payment is declined (nothing stored),
        409 when the caller already has an active subscription to the plan."""
        payments = self._payments()
        user_id = principal.user_id
        plan = await queries.plan_by_id(self._pool, body.plan_id)
        if plan is None:
            raise InvalidInput("Field 'plan_id' does not name an existing plan.")
        if await queries.has_active_for_plan(self._pool, user_id, plan.plan_id, self._clock()):
            raise _already_subscribed()
        try:
            external_id = await payments.create_subscription(
                user_id, plan.stripe_price_id, body.stripe_payment_method_id
            )
        except PaymentDeclined:
            raise PaymentRequired("Payment failed: the payment method was declined.") from None
        now = self._clock()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await queries.expire_stale(conn, user_id, plan.plan_id, now)
                row = await queries.insert_subscription(
                    conn, user_id, plan.plan_id, external_id, now, now + SUBSCRIPTION_PERIOD
                )
        except asyncpg.UniqueViolationError:
            # A concurrent request subscribed first: do not leave a second one billing.
            await payments.cancel_subscription(external_id)
            raise _already_subscribed() from None
        return subscription_out(row, now)

    async def list_subscriptions(self, principal: Principal, page: PageQuery) -> SubscriptionList:
        """The caller's subscriptions, newest first, with their status as of now."""
        self._payments()  # 503 without a provider
        rows, total = await queries.subscription_page(
            self._pool, principal.user_id, page.per_page, page.offset
        )
        now = self._clock()
        return SubscriptionList(
            subscriptions=[subscription_out(r, now) for r in rows],
            page=page.page,
            per_page=page.per_page,
            total=total,
            message=NO_SUBSCRIPTIONS if total == 0 else None,
        )

    async def cancel(self, principal: Principal, subscription_id: uuid.UUID) -> SubscriptionOut:
        """Cancel one of the caller's subscriptions with the provider, then here.
        Idempotent: a canceled (or expired) subscription is returned as it is."""
        payments = self._payments()
        row = await queries.subscription_of_user(self._pool, subscription_id, principal.user_id)
        if row is None:
            raise NotFound("Subscription not found")
        now = self._clock()
        if row.status_at(now) != "active":
            return subscription_out(row, now)
        await payments.cancel_subscription(row.stripe_subscription_id)
        canceled = await queries.cancel(self._pool, subscription_id, now)
        if canceled is None:  # canceled or expired by a concurrent request meanwhile
            canceled = await queries.subscription_of_user(
                self._pool, subscription_id, principal.user_id
            )
        assert canceled is not None
        return subscription_out(canceled, now)

    async def webhook(self, payload: bytes, signature: str | None) -> WebhookOut:
        """A provider's event, once its signature checks out: a renewal extends the
        subscription to the end of the period paid for, a cancellation ends it now.
        Events for subscriptions this node does not know change nothing (and still answer
        200, or the provider would send them again for days)."""
        event = await self._payments().parse_webhook(payload, signature)
        now = self._clock()
        if isinstance(event, Renewal):
            changed = await queries.extend_by_external(
                self._pool, event.subscription_id, event.paid_until
            )
        elif isinstance(event, Cancellation):
            changed = await queries.end_by_external(self._pool, event.subscription_id, now)
        else:
            changed = False
        return WebhookOut(received=True, changed=changed)

    async def account_deleted(self, user_id: uuid.UUID) -> None:
        """The account was deleted: its plans can no longer be bought; the subscriptions
        to them and its own end here and with the provider (nobody is charged again)."""
        async with self._pool.acquire() as conn, conn.transaction():
            ended = await queries.retire_account(conn, user_id, self._clock())
        if self._provider is None:  # nothing was charged through a provider this node has
            return
        for external_id in ended:
            try:
                await self._provider.cancel_subscription(external_id)
            except Exception:  # the supervisor: the rest still get cancelled
                log.exception("could not cancel a subscription with the payment provider")


def _already_subscribed() -> Conflict:
    return Conflict("You already have an active subscription to this plan")


class PaywallService:
    """Backlog US-6.3: who may consume monetized streams, playlists and podcasts."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock = utcnow, base_url: str = "") -> None:
        self._pool = pool
        self._clock = clock
        self._base_url = base_url

    async def require_active_subscription(
        self, principal: Principal | None, owner_id: uuid.UUID
    ) -> None:
        """Pass for an admin, the content's owner (`owner_id`), or a caller with an active,
        unexpired subscription to one of that owner's plans (or to an admin's platform-wide
        plan); otherwise raise `SubscriptionRequired` (403, with the URL of the plans that
        open the owner's content)."""
        if principal is not None and (
            principal.is_admin
            or principal.owns(owner_id)
            or await self.has_active_subscription(principal.user_id, owner_id)
        ):
            return
        plans_url = f"{self._base_url}/v1/monetization/plans?owner_id={owner_id}"
        raise SubscriptionRequired(owner_id, plans_url)

    async def has_active_subscription(self, user_id: uuid.UUID, owner_id: uuid.UUID) -> bool:
        """Whether the user has an active, unexpired subscription that opens `owner_id`'s
        monetized content. Read each time: a cancellation counts at once."""
        return await queries.has_active(self._pool, user_id, owner_id, self._clock())


MONETIZATION = web.AppKey("monetization_service", MonetizationService)
PAYWALL = web.AppKey("paywall_service", PaywallService)
