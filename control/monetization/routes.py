"""`/v1/monetization/*`."""

from __future__ import annotations

from aiohttp import web

from control.api import Api, path_uuid
from control.monetization.payments import (
    BAD_SIGNATURE,
    NO_WEBHOOKS,
    NOT_AN_EVENT,
    PROVIDER_DOWN,
)
from control.monetization.schemas import (
    PlanIn,
    PlanList,
    PlanListQuery,
    PlanOut,
    SubscribeIn,
    SubscriptionList,
    SubscriptionOut,
    WebhookOut,
)
from control.monetization.service import MONETIZATION, NO_PROVIDER
from control.schemas import PageQuery
from control.security import principal_of

api = Api()


@api.post(
    "/v1/monetization/plans",
    summary="Create a subscription plan (DJ or admin)",
    tag="monetization",
    body=PlanIn,
    response=PlanOut,
    status=201,
    scope="monetization:write",
    # Listeners hold monetization:write too, but only to subscribe; admins pass any role.
    role="dj",
    errors=(400, 401, 403, 429, 503),
    examples={
        403: (
            "This action requires the 'dj' role",
            "Your token lacks the 'monetization:write' scope",
        ),
        503: (NO_PROVIDER, PROVIDER_DOWN),
    },
)
async def create_plan(request: web.Request, body: PlanIn) -> PlanOut:
    return await request.app[MONETIZATION].create_plan(principal_of(request), body)


@api.get(
    "/v1/monetization/plans",
    summary="List subscription plans (all, or those that open one DJ's content)",
    tag="monetization",
    query=PlanListQuery,
    response=PlanList,
    errors=(400, 401, 429, 503),
    examples={503: NO_PROVIDER},
)
async def list_plans(request: web.Request, query: PlanListQuery) -> PlanList:
    return await request.app[MONETIZATION].list_plans(query)


@api.post(
    "/v1/monetization/subscriptions",
    summary="Subscribe to a plan",
    tag="monetization",
    body=SubscribeIn,
    response=SubscriptionOut,
    status=201,
    scope="monetization:write",
    errors=(400, 401, 402, 403, 409, 429, 503),
    examples={
        402: "Payment failed: the payment method was declined.",
        409: "You already have an active subscription to this plan",
        503: (NO_PROVIDER, PROVIDER_DOWN),
    },
)
async def subscribe(request: web.Request, body: SubscribeIn) -> SubscriptionOut:
    return await request.app[MONETIZATION].subscribe(principal_of(request), body)


@api.get(
    "/v1/monetization/subscriptions",
    summary="The caller's subscriptions, newest first",
    tag="monetization",
    query=PageQuery,
    response=SubscriptionList,
    errors=(400, 401, 429, 503),
    examples={503: NO_PROVIDER},
)
async def list_subscriptions(request: web.Request, query: PageQuery) -> SubscriptionList:
    return await request.app[MONETIZATION].list_subscriptions(principal_of(request), query)


@api.delete(
    "/v1/monetization/subscriptions/{subscription_id}",
    summary="Cancel one of the caller's subscriptions",
    tag="monetization",
    response=SubscriptionOut,
    scope="monetization:write",
    errors=(401, 403, 404, 429, 503),
    examples={503: (NO_PROVIDER, PROVIDER_DOWN)},
)
async def cancel_subscription(request: web.Request) -> SubscriptionOut:
    subscription_id = path_uuid(request, "subscription_id", "Subscription")
    return await request.app[MONETIZATION].cancel(principal_of(request), subscription_id)


@api.post(
    "/v1/monetization/stripe/webhook",
    summary="Stripe's webhook: renewals and cancellations (PAYMENT_PROVIDER=stripe)",
    description="Called by Stripe, not by clients: the body is a Stripe event, checked "
    "against the `Stripe-Signature` header and `STRIPE_WEBHOOK_SECRET` (400 when it does "
    "not match). `invoice.paid` extends the subscription to the end of the period paid for; "
    "`customer.subscription.deleted` ends it. Other events are acknowledged and ignored.",
    tag="monetization",
    auth="none",
    # Not rate-limited: Stripe delivers from a few addresses in bursts, and a request
    # without a valid signature costs one HMAC.
    rate=None,
    response=WebhookOut,
    errors=(400, 404, 503),
    examples={400: (BAD_SIGNATURE, NOT_AN_EVENT), 404: NO_WEBHOOKS, 503: NO_PROVIDER},
)
async def stripe_webhook(request: web.Request) -> WebhookOut:
    payload = await request.read()
    signature = request.headers.get("Stripe-Signature")
    return await request.app[MONETIZATION].webhook(payload, signature)
