"""`PAYMENT_PROVIDER=stripe` against a fake Stripe API on loopback (tests/fakestripe.py):
plans become products and prices, subscriptions customers and subscriptions, declines are
402s with nothing stored, and signed webhooks renew and end subscriptions. Also: a node
without a provider sells nothing (503)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.accounts import user_headers
from tests.fakestripe import (
    API_KEY,
    DECLINED_CARD,
    GOOD_CARD,
    WEBHOOK_SECRET,
    FakeStripe,
    event,
    invoice_paid,
    sign,
)

PLANS = "/v1/monetization/plans"
SUBSCRIPTIONS = "/v1/monetization/subscriptions"
WEBHOOK = "/v1/monetization/stripe/webhook"
PLAN = {
    "name": "Backstage",
    "price_cents": 700,
    "currency": "EUR",
    "billing_interval": "yearly",
    "features": ["live_streams"],
}


@pytest.fixture
async def stripe_node(aiohttp_server, make_client) -> tuple[Any, FakeStripe]:
    fake = FakeStripe()
    server = await aiohttp_server(fake.app())
    client = await make_client(
        payment_provider="stripe",
        stripe_api_key=API_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=str(server.make_url("")),
    )
    return client, fake


async def plan_and_listener(client) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    _, dj = await user_headers(client, "dj")
    response = await client.post(PLANS, json=PLAN, headers=dj)
    assert response.status == 201, await response.text()
    listener, headers = await user_headers(client, "listener")
    return await response.json(), listener, headers


async def subscribe(client, headers, plan_id: str, method: str = GOOD_CARD):
    body = {"plan_id": plan_id, "stripe_payment_method_id": method}
    return await client.post(SUBSCRIPTIONS, json=body, headers=headers)


async def my_subscriptions(client, headers) -> list[dict[str, Any]]:
    response = await client.get(SUBSCRIPTIONS, headers=headers)
    assert response.status == 200
    return list((await response.json())["subscriptions"])


async def deliver(client, body: dict[str, Any], secret: str = WEBHOOK_SECRET):
    payload = json.dumps(body).encode()
    headers = {"Stripe-Signature": sign(payload, secret), "Content-Type": "application/json"}
    return await client.post(WEBHOOK, data=payload, headers=headers)


async def test_a_plan_is_a_stripe_product_with_a_recurring_price(stripe_node) -> None:
    client, fake = stripe_node
    plan, _, _ = await plan_and_listener(client)
    product = fake.products[plan["stripe_product_id"]]
    price = fake.prices[plan["stripe_price_id"]]
    assert product["name"] == "Backstage"
    assert price["product"] == product["id"]
    assert (price["unit_amount"], price["currency"], price["recurring"]) == (
        700,
        "eur",
        {"interval": "year"},
    )


async def test_subscribing_charges_a_stripe_customer(stripe_node) -> None:
    client, fake = stripe_node
    plan, listener, headers = await plan_and_listener(client)
    response = await subscribe(client, headers, plan["plan_id"])
    assert response.status == 201, await response.text()
    sub = await response.json()
    held = fake.subscriptions[sub["stripe_subscription_id"]]
    assert held["price"] == plan["stripe_price_id"]
    assert held["metadata"]["user_id"] == listener["user_id"]
    customer = fake.customers[held["customer"]]
    assert customer["invoice_settings"]["default_payment_method"] == GOOD_CARD


@pytest.mark.parametrize("method", [DECLINED_CARD, "pm_nobody_has_this"])
async def test_a_refused_payment_method_is_402_and_stores_nothing(stripe_node, method) -> None:
    client, fake = stripe_node
    plan, _, headers = await plan_and_listener(client)
    response = await subscribe(client, headers, plan["plan_id"], method)
    assert response.status == 402
    assert await response.json() == {
        "error": "Payment failed: the payment method was declined.",
        "code": 402,
    }
    assert await my_subscriptions(client, headers) == []
    assert fake.subscriptions == {}


async def test_canceling_cancels_at_stripe(stripe_node) -> None:
    client, fake = stripe_node
    plan, _, headers = await plan_and_listener(client)
    sub = await (await subscribe(client, headers, plan["plan_id"])).json()
    fake.subscriptions.clear()  # gone at Stripe already: canceling here still works
    response = await client.delete(f"{SUBSCRIPTIONS}/{sub['subscription_id']}", headers=headers)
    assert response.status == 200
    assert (await response.json())["status"] == "canceled"


async def test_a_paid_renewal_extends_and_a_deletion_ends_the_subscription(stripe_node) -> None:
    client, _ = stripe_node
    plan, _, headers = await plan_and_listener(client)
    sub = await (await subscribe(client, headers, plan["plan_id"])).json()
    external = sub["stripe_subscription_id"]
    period_end = int(time.time()) + 400 * 86_400

    forged = await deliver(client, invoice_paid(external, period_end), secret="whsec_wrong")
    assert forged.status == 400
    assert await forged.json() == {"error": "Invalid Stripe-Signature", "code": 400}
    assert (await my_subscriptions(client, headers))[0]["expires_at"] == sub["expires_at"]

    renewed = await deliver(client, invoice_paid(external, period_end))
    assert renewed.status == 200
    assert await renewed.json() == {"received": True, "changed": True}
    (mine,) = await my_subscriptions(client, headers)
    assert datetime.fromisoformat(mine["expires_at"]) == datetime.fromtimestamp(period_end, UTC)
    assert mine["status"] == "active"

    ignored = await deliver(client, event("customer.created", {"id": "cus_x"}))
    assert await ignored.json() == {"received": True, "changed": False}

    ended = await deliver(
        client, event("customer.subscription.deleted", {"id": external, "object": "subscription"})
    )
    assert await ended.json() == {"received": True, "changed": True}
    (mine,) = await my_subscriptions(client, headers)
    assert mine["status"] == "canceled"


async def test_stripe_refusing_the_key_is_a_503_not_a_500(aiohttp_server, make_client) -> None:
    server = await aiohttp_server(FakeStripe().app())
    client = await make_client(
        payment_provider="stripe",
        stripe_api_key="sk_test_revoked",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=str(server.make_url("")),
    )
    _, dj = await user_headers(client, "dj")
    response = await client.post(PLANS, json=PLAN, headers=dj)
    assert response.status == 503
    assert await response.json() == {
        "error": "The payment provider is unavailable; try again later",
        "code": 503,
    }


async def test_without_a_provider_nothing_is_sold(make_client) -> None:
    client = await make_client(payment_provider=None, domain_verifier=None)
    _, dj = await user_headers(client, "dj")
    payments = {"error": "Payments are not configured (PAYMENT_PROVIDER)", "code": 503}
    domains = {"error": "Custom domains are not configured (DOMAIN_VERIFIER)", "code": 503}
    subscribe_body = {"plan_id": PLAN_ID, "stripe_payment_method_id": GOOD_CARD}
    calls = [
        ("POST", PLANS, PLAN, payments),
        ("GET", PLANS, None, payments),
        ("POST", SUBSCRIPTIONS, subscribe_body, payments),
        ("GET", SUBSCRIPTIONS, None, payments),
        ("DELETE", f"{SUBSCRIPTIONS}/{PLAN_ID}", None, payments),
        ("POST", "/v1/domains", {"custom_domain": "pod.example.org"}, domains),
        ("GET", "/v1/domains", None, domains),
        ("GET", f"/v1/domains/{PLAN_ID}", None, domains),
    ]
    for method, path, body, expected in calls:
        response = await client.request(method, path, json=body, headers=dj)
        assert response.status == 503, (path, await response.text())
        assert await response.json() == expected


async def test_the_stub_takes_no_webhooks(make_client) -> None:
    client = await make_client()
    response = await deliver(client, invoice_paid("test_sub", int(time.time())))
    assert response.status == 404


PLAN_ID = "00000000-0000-4000-8000-000000000000"
