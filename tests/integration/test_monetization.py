"""US-6.1 – 6.3 through the HTTP API on a real PostgreSQL: plans, subscriptions with the
stub payment provider, and the paywall service later routes call."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import create_autospec

import pytest

from control.monetization.payments import StubPaymentProvider
from control.monetization.schemas import SubscribeIn
from control.monetization.service import PAYWALL, MonetizationService
from control.security import ROLE_SCOPES, Principal
from mediaserver.app import POOL, build_app
from mediaserver.clock import utcnow
from mediaserver.errors import Conflict, Forbidden
from tests.accounts import user_headers

MISSING = object()
PLANS = "/v1/monetization/plans"
SUBSCRIPTIONS = "/v1/monetization/subscriptions"
PLAN = {
    "name": "Premium Live Access",
    "price_cents": 500,
    "currency": "usd",
    "billing_interval": "monthly",
    "features": ["live_streams", "playlist_access", "podcast_downloads"],
}


def principal(user_id: str | uuid.UUID, role: str = "listener") -> Principal:
    """The caller as a route hands it to a service (what the token would say)."""
    scopes = frozenset(ROLE_SCOPES[role])
    return Principal(uuid.UUID(str(user_id)), "user@example.com", role, scopes, "test")


def plan_body(**changes: Any) -> dict[str, Any]:
    """The example plan with `changes`; a field set to MISSING is left out."""
    return {k: v for k, v in {**PLAN, **changes}.items() if v is not MISSING}


async def create_plan(client, headers, **changes) -> dict[str, Any]:
    response = await client.post(PLANS, json=plan_body(**changes), headers=headers)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def subscribe(client, headers, plan_id, payment_method="test_pm"):
    body = {"plan_id": plan_id, "stripe_payment_method_id": payment_method}
    return await client.post(SUBSCRIPTIONS, json=body, headers=headers)


async def plan_and_listener(client) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """A DJ's plan, and a new listener account with its auth headers."""
    _, dj = await user_headers(client, "dj")
    plan = await create_plan(client, dj)
    listener, headers = await user_headers(client, "listener")
    return plan, listener, headers


async def with_provider(client, provider):
    """A DJ's plan, and the monetization service over `provider` as that DJ would call it."""
    dj, headers = await user_headers(client, "dj")
    plan = await create_plan(client, headers)
    body = SubscribeIn(plan_id=plan["plan_id"], stripe_payment_method_id="pm_1")
    return principal(dj["user_id"], "dj"), body, MonetizationService(client.app[POOL], provider)


async def my_subscriptions(client, headers) -> list[dict[str, Any]]:
    response = await client.get(SUBSCRIPTIONS, headers=headers)
    assert response.status == 200, await response.text()
    return list((await response.json())["subscriptions"])


@pytest.mark.parametrize("role", ["dj", "admin"])
async def test_dj_or_admin_creates_plan_with_stub_ids(client, role):
    user, headers = await user_headers(client, role)
    plan = await create_plan(client, headers)
    assert uuid.UUID(plan["plan_id"]) and plan["owner_id"] == user["user_id"]
    assert plan["stripe_product_id"] == "test_prod" and plan["stripe_price_id"] == "test_price"
    assert {k: plan[k] for k in PLAN} == {**PLAN, "currency": "USD"}

    yearly = await create_plan(client, headers, features=MISSING, billing_interval="yearly")
    assert yearly["features"] == [] and yearly["billing_interval"] == "yearly"


async def test_listener_cannot_create_plan_and_anonymous_must_sign_in(client):
    _, headers = await user_headers(client, "listener")
    response = await client.post(PLANS, json=PLAN, headers=headers)
    assert response.status == 403
    assert await response.json() == {"error": "This action requires the 'dj' role", "code": 403}
    assert (await client.post(PLANS, json=PLAN)).status == 401


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"billing_interval": "weekly"}, "Field 'billing_interval' must be 'monthly' or 'yearly'."),
        ({"price_cents": -1}, "Field 'price_cents' must be at least 0."),
        ({"price_cents": "500"}, "Field 'price_cents' must be an integer."),
        ({"currency": "DOLLARS"}, "Field 'currency' must be a 3-letter currency code such as USD."),
        ({"currency": "U$D"}, "Field 'currency' must be a 3-letter currency code such as USD."),
        ({"name": "  "}, "Field 'name' must not be empty."),
        ({"name": None}, "Field 'name' must be a string."),
        ({"features": "live"}, "Field 'features' must be a list."),
        ({"plan": "x"}, "Field 'plan' is not a recognised field."),
        ({"price_cents": MISSING}, "Field 'price_cents' is required."),
    ],
)
async def test_invalid_plan_is_refused_with_a_clear_message(client, change, message):
    _, headers = await user_headers(client, "dj")
    response = await client.post(PLANS, json=plan_body(**change), headers=headers)
    assert response.status == 400
    body = await response.json()
    assert body["error"] == message and body["code"] == 400


async def test_any_signed_in_user_lists_plans(client):
    _, dj = await user_headers(client, "dj")
    plans = [await create_plan(client, dj, name=name) for name in ("Basic", "Gold")]
    _, listener = await user_headers(client, "listener")

    response = await client.get(PLANS, params={"per_page": "100"}, headers=listener)
    listing = await response.json()
    assert response.status == 200 and listing["page"] == 1 and listing["total"] >= 2
    names = {p["plan_id"]: p["name"] for p in listing["plans"]}
    assert [names[p["plan_id"]] for p in plans] == ["Basic", "Gold"]

    one = await (await client.get(PLANS, params={"per_page": "1"}, headers=listener)).json()
    assert len(one["plans"]) == 1 and one["total"] == listing["total"]
    assert (await client.get(PLANS)).status == 401


async def test_subscribe_is_active_for_thirty_days_and_only_once(client):
    plan, _, listener = await plan_and_listener(client)

    response = await subscribe(client, listener, plan["plan_id"])
    assert response.status == 201, await response.text()
    sub = await response.json()
    assert sub["status"] == "active" and sub["stripe_subscription_id"] == "test_sub"
    assert sub["plan_id"] == plan["plan_id"] and uuid.UUID(sub["subscription_id"])
    lasts = datetime.fromisoformat(sub["expires_at"]) - datetime.now(UTC)
    assert abs(lasts - timedelta(days=30)) < timedelta(minutes=1)

    again = await subscribe(client, listener, plan["plan_id"])
    assert again.status == 409
    assert (await again.json())["error"] == "You already have an active subscription to this plan"
    assert len(await my_subscriptions(client, listener)) == 1


@pytest.mark.parametrize(
    ("plan_id", "payment_method", "status", "message"),
    [
        (None, "fail_pm", 402, "Payment failed: the payment method was declined."),
        ("not-a-uuid", "test_pm", 400, "Field 'plan_id' must be a valid UUID."),
        (str(uuid.uuid4()), "test_pm", 400, "Field 'plan_id' does not name an existing plan."),
    ],
)
async def test_refused_subscription_stores_nothing(
    client, plan_id, payment_method, status, message
):
    plan, _, listener = await plan_and_listener(client)
    response = await subscribe(client, listener, plan_id or plan["plan_id"], payment_method)
    assert response.status == status
    body = await response.json()
    assert body["error"] == message and body["code"] == status
    assert await my_subscriptions(client, listener) == []


async def test_my_subscriptions_newest_first_and_only_mine(client):
    _, dj = await user_headers(client, "dj")
    basic, gold = await create_plan(client, dj), await create_plan(client, dj, name="Gold")
    _, listener = await user_headers(client, "listener")
    _, other = await user_headers(client, "listener")
    first = await (await subscribe(client, listener, basic["plan_id"])).json()
    second = await (await subscribe(client, listener, gold["plan_id"])).json()
    assert (await subscribe(client, other, basic["plan_id"])).status == 201

    mine = await my_subscriptions(client, listener)
    newest_first = [second["subscription_id"], first["subscription_id"]]
    assert [s["subscription_id"] for s in mine] == newest_first
    assert all(s["status"] == "active" for s in mine)


async def test_cancel_is_idempotent_closes_the_paywall_and_frees_the_plan(client):
    plan, user, listener = await plan_and_listener(client)
    sub = await (await subscribe(client, listener, plan["plan_id"])).json()
    url = f"{SUBSCRIPTIONS}/{sub['subscription_id']}"

    for _ in range(2):
        response = await client.delete(url, headers=listener)
        assert response.status == 200
        body = await response.json()
        assert body["subscription_id"] == sub["subscription_id"]
        assert body["status"] == "canceled" and body["canceled_at"]
    assert [s["status"] for s in await my_subscriptions(client, listener)] == ["canceled"]
    with pytest.raises(Forbidden):
        await client.app[PAYWALL].require_active_subscription(
            principal(user["user_id"]), uuid.UUID(plan["owner_id"])
        )
    assert (await subscribe(client, listener, plan["plan_id"])).status == 201


async def test_cancel_someone_elses_or_unknown_subscription_is_404(client):
    plan, _, owner = await plan_and_listener(client)
    _, intruder = await user_headers(client, "listener")
    sub = await (await subscribe(client, owner, plan["plan_id"])).json()

    for sub_id in (sub["subscription_id"], uuid.uuid4(), "nope"):
        response = await client.delete(f"{SUBSCRIPTIONS}/{sub_id}", headers=intruder)
        assert response.status == 404
        assert await response.json() == {"error": "Subscription not found", "code": 404}
    assert [s["status"] for s in await my_subscriptions(client, owner)] == ["active"]


async def test_cancel_goes_through_the_payment_provider(client):
    provider = create_autospec(StubPaymentProvider, instance=True)
    provider.create_subscription.return_value = "sub_123"
    dj, body, service = await with_provider(client, provider)

    sub = await service.subscribe(dj, body)
    provider.create_subscription.assert_awaited_once_with(dj.user_id, "test_price", "pm_1")
    await service.cancel(dj, sub.subscription_id)
    await service.cancel(dj, sub.subscription_id)
    provider.cancel_subscription.assert_awaited_once_with("sub_123")


async def test_concurrent_subscribes_keep_one_and_cancel_the_other_charge(client):
    provider = create_autospec(StubPaymentProvider, instance=True)
    both_charged = asyncio.Barrier(2)
    ids = iter(["sub_a", "sub_b"])

    async def charge(*_: Any) -> str:
        external_id = next(ids)
        await both_charged.wait()  # both requests are past the 409 pre-check
        return external_id

    provider.create_subscription.side_effect = charge
    dj, body, service = await with_provider(client, provider)

    results = await asyncio.gather(
        service.subscribe(dj, body), service.subscribe(dj, body), return_exceptions=True
    )
    [kept] = [r for r in results if not isinstance(r, BaseException)]
    [lost] = [r for r in results if isinstance(r, BaseException)]
    assert isinstance(lost, Conflict)
    loser = {"sub_a", "sub_b"} - {kept.stripe_subscription_id}
    provider.cancel_subscription.assert_awaited_once_with(loser.pop())


async def test_paywall_lets_in_admins_owners_and_subscribers(client):
    paywall = client.app[PAYWALL]
    plan, listener, headers = await plan_and_listener(client)
    admin, _ = await user_headers(client, "admin")
    owner_id = uuid.UUID(plan["owner_id"])
    subscriber = principal(listener["user_id"])

    for caller in (None, subscriber):
        with pytest.raises(Forbidden) as denied:
            await paywall.require_active_subscription(caller, owner_id)
        assert denied.value.body()["error"] == "Subscription required"
    assert not await paywall.has_active_subscription(subscriber.user_id, owner_id)

    await paywall.require_active_subscription(principal(owner_id, "dj"), owner_id)
    await paywall.require_active_subscription(principal(admin["user_id"], "admin"), owner_id)
    other_dj, other_headers = await user_headers(client, "dj")
    other_id = uuid.UUID(other_dj["user_id"])
    with pytest.raises(Forbidden):  # a DJ is not the owner of another DJ's content
        await paywall.require_active_subscription(principal(owner_id, "dj"), other_id)

    assert (await subscribe(client, headers, plan["plan_id"])).status == 201
    await paywall.require_active_subscription(subscriber, owner_id)
    assert await paywall.has_active_subscription(subscriber.user_id, owner_id)
    # One DJ's plan (even a free one) opens that DJ's content only, never another's.
    with pytest.raises(Forbidden):
        await paywall.require_active_subscription(subscriber, other_id)
    free = await create_plan(client, other_headers, name="Free tier", price_cents=0)
    third_dj, _ = await user_headers(client, "dj")
    assert (await subscribe(client, headers, free["plan_id"])).status == 201
    await paywall.require_active_subscription(subscriber, other_id)
    with pytest.raises(Forbidden):
        await paywall.require_active_subscription(subscriber, uuid.UUID(third_dj["user_id"]))


async def test_an_admin_plan_is_platform_wide(client):
    _, admin = await user_headers(client, "admin")
    plan = await create_plan(client, admin, name="All access")
    assert plan["platform_wide"] is True
    listener, headers = await user_headers(client, "listener")
    dj, _ = await user_headers(client, "dj")
    paywall = client.app[PAYWALL]
    with pytest.raises(Forbidden):
        await paywall.require_active_subscription(
            principal(listener["user_id"]), uuid.UUID(dj["user_id"])
        )
    assert (await subscribe(client, headers, plan["plan_id"])).status == 201
    await paywall.require_active_subscription(
        principal(listener["user_id"]), uuid.UUID(dj["user_id"])
    )


async def test_expired_subscription_is_reported_refused_and_renewable(
    make_client, make_settings, test_secrets
):
    clock = create_autospec(utcnow, return_value=datetime.now(UTC))
    client = await make_client(build_app(make_settings(), test_secrets, clock=clock))
    plan, listener, headers = await plan_and_listener(client)
    owner = uuid.UUID(plan["owner_id"])
    old = await (await subscribe(client, headers, plan["plan_id"])).json()
    await client.app[PAYWALL].require_active_subscription(principal(listener["user_id"]), owner)

    clock.return_value += timedelta(days=30, seconds=1)
    with pytest.raises(Forbidden):
        await client.app[PAYWALL].require_active_subscription(principal(listener["user_id"]), owner)
    assert [s["status"] for s in await my_subscriptions(client, headers)] == ["expired"]
    canceled = await client.delete(f"{SUBSCRIPTIONS}/{old['subscription_id']}", headers=headers)
    assert (await canceled.json())["status"] == "expired"

    renewed = await subscribe(client, headers, plan["plan_id"])
    assert renewed.status == 201
    new = await renewed.json()
    assert datetime.fromisoformat(new["expires_at"]) == clock.return_value + timedelta(days=30)
    assert [s["status"] for s in await my_subscriptions(client, headers)] == ["active", "expired"]
    query = "SELECT status FROM subscriptions WHERE subscription_id = $1"
    assert await client.app[POOL].fetchval(query, uuid.UUID(old["subscription_id"])) == "expired"
    await client.app[PAYWALL].require_active_subscription(principal(listener["user_id"]), owner)


async def test_empty_lists_say_what_to_do(client):
    _, listener = await user_headers(client, "listener")
    response = await client.get(SUBSCRIPTIONS, headers=listener)
    assert await response.json() == {
        "subscriptions": [],
        "page": 1,
        "per_page": 20,
        "total": 0,
        "message": "You have no subscriptions yet. Subscribe to a plan with "
        "POST /v1/monetization/subscriptions.",
    }
    _, dj = await user_headers(client, "dj")
    for path, key, message in (
        (
            "/v1/podcasts",
            "podcasts",
            "You have no podcasts yet. Create one with POST /v1/podcasts.",
        ),
        (
            "/v1/domains",
            "domains",
            "You have no custom domains yet. Register one with POST /v1/domains.",
        ),
    ):
        body = await (await client.get(path, headers=dj)).json()
        assert (body[key], body["message"]) == ([], message)
    await create_plan(client, dj)
    assert (await (await client.get(PLANS, headers=dj)).json())["message"] is None


async def test_promoting_a_dj_does_not_make_their_plans_platform_wide(client):
    from control.auth.service import AUTH

    dj, dj_headers = await user_headers(client, "dj")
    plan = await create_plan(client, dj_headers, price_cents=0)
    assert plan["platform_wide"] is False
    listener, headers = await user_headers(client, "listener")
    assert (await subscribe(client, headers, plan["plan_id"])).status == 201
    await client.app[AUTH].create_admin(dj["email"], "Pr0motedPass", None)
    other_dj, _ = await user_headers(client, "dj")
    with pytest.raises(Forbidden):  # still the DJ's own plan, not all-access
        await client.app[PAYWALL].require_active_subscription(
            principal(listener["user_id"]), uuid.UUID(other_dj["user_id"])
        )
