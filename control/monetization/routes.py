"""`/v1/monetization/*`."""

from __future__ import annotations

from aiohttp import web

from control.api import Api, path_uuid
from control.monetization.schemas import (
    PlanIn,
    PlanList,
    PlanOut,
    SubscribeIn,
    SubscriptionList,
    SubscriptionOut,
)
from control.monetization.service import MONETIZATION
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
    errors=(400, 401, 403, 429),
    examples={
        403: (
            "This action requires the 'dj' role",
            "Your token lacks the 'monetization:write' scope",
        )
    },
)
async def create_plan(request: web.Request, body: PlanIn) -> PlanOut:
    return await request.app[MONETIZATION].create_plan(principal_of(request), body)


@api.get(
    "/v1/monetization/plans",
    summary="List subscription plans",
    tag="monetization",
    query=PageQuery,
    response=PlanList,
    errors=(400, 401, 429),
)
async def list_plans(request: web.Request, query: PageQuery) -> PlanList:
    return await request.app[MONETIZATION].list_plans(query)


@api.post(
    "/v1/monetization/subscriptions",
    summary="Subscribe to a plan",
    tag="monetization",
    body=SubscribeIn,
    response=SubscriptionOut,
    status=201,
    scope="monetization:write",
    errors=(400, 401, 402, 403, 409, 429),
    examples={
        402: "Payment failed: the payment method was declined.",
        409: "You already have an active subscription to this plan",
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
    errors=(400, 401, 429),
)
async def list_subscriptions(request: web.Request, query: PageQuery) -> SubscriptionList:
    return await request.app[MONETIZATION].list_subscriptions(principal_of(request), query)


@api.delete(
    "/v1/monetization/subscriptions/{subscription_id}",
    summary="Cancel one of the caller's subscriptions",
    tag="monetization",
    response=SubscriptionOut,
    scope="monetization:write",
    errors=(401, 403, 404, 429),
)
async def cancel_subscription(request: web.Request) -> SubscriptionOut:
    subscription_id = path_uuid(request, "subscription_id", "Subscription")
    return await request.app[MONETIZATION].cancel(principal_of(request), subscription_id)
