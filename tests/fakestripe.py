"""A fake of the few Stripe API endpoints `control.monetization.stripe_payments` calls, on
loopback: form-encoded requests (`recurring[interval]=month`, `items[0][price]=…`) in,
Stripe-shaped JSON out, errors as Stripe sends them. It keeps what was created, so tests
can check what the real Stripe would hold. Payment methods follow Stripe's test ones:
`pm_card_visa` pays, `pm_card_chargeDeclined` attaches but its charge is declined (402
`card_error`), anything else does not exist (404 `resource_missing`).

`sign` builds a `Stripe-Signature` header exactly as Stripe does (HMAC-SHA256 of
`"{timestamp}.{payload}"` with the endpoint's secret)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY = "sk_test_fake_key"
WEBHOOK_SECRET = "whsec_fake_secret"
GOOD_CARD = "pm_card_visa"
DECLINED_CARD = "pm_card_chargeDeclined"


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def _error(status: int, kind: str, message: str, code: str | None = None, **more: Any):
    body = {"error": {"type": kind, "message": message, "code": code, **more}}
    return web.json_response(body, status=status)


@dataclass
class FakeStripe:
    """The objects the fake holds, by id, and every request's path and form."""

    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/v1/products", self._product)
        app.router.add_post("/v1/prices", self._price)
        app.router.add_post("/v1/customers", self._customer)
        app.router.add_post("/v1/subscriptions", self._subscription)
        app.router.add_delete("/v1/subscriptions/{id}", self._cancel)
        return app

    def _id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids)}"

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.requests.append((request.method, request.path, form))
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        request["form"] = form
        return await handler(request)

    async def _product(self, request: web.Request) -> web.Response:
        form = request["form"]
        product = {"id": self._id("prod"), "object": "product", "name": form["name"]}
        self.products[product["id"]] = product
        return web.json_response(product)

    async def _price(self, request: web.Request) -> web.Response:
        form = request["form"]
        if form.get("product") not in self.products:
            return _error(404, "invalid_request_error", "No such product", "resource_missing")
        price = {
            "id": self._id("price"),
            "object": "price",
            "product": form["product"],
            "unit_amount": int(form["unit_amount"]),
            "currency": form["currency"],
            "recurring": {"interval": form["recurring[interval]"]},
        }
        self.prices[price["id"]] = price
        return web.json_response(price)

    async def _customer(self, request: web.Request) -> web.Response:
        form = request["form"]
        method = form.get("payment_method")
        if method not in (GOOD_CARD, DECLINED_CARD):
            return _error(
                404,
                "invalid_request_error",
                f"No such PaymentMethod: '{method}'",
                "resource_missing",
                param="payment_method",
            )
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "metadata": {"user_id": form.get("metadata[user_id]")},
            "invoice_settings": {
                "default_payment_method": form.get("invoice_settings[default_payment_method]")
            },
        }
        self.customers[customer["id"]] = customer
        return web.json_response(customer)

    async def _subscription(self, request: web.Request) -> web.Response:
        form = request["form"]
        customer = self.customers.get(form.get("customer", ""))
        if customer is None:
            return _error(404, "invalid_request_error", "No such customer", "resource_missing")
        if form.get("items[0][price]") not in self.prices:
            return _error(404, "invalid_request_error", "No such price", "resource_missing")
        method = form.get("default_payment_method")
        if method == DECLINED_CARD and form.get("payment_behavior") == "error_if_incomplete":
            return _error(402, "card_error", "Your card was declined.", "card_declined")
        subscription = {
            "id": self._id("sub"),
            "object": "subscription",
            "status": "active",
            "customer": customer["id"],
            "price": form["items[0][price]"],
            "metadata": {"user_id": form.get("metadata[user_id]")},
        }
        self.subscriptions[subscription["id"]] = subscription
        return web.json_response(subscription)

    async def _cancel(self, request: web.Request) -> web.Response:
        subscription = self.subscriptions.get(request.match_info["id"])
        if subscription is None:
            return _error(404, "invalid_request_error", "No such subscription", "resource_missing")
        subscription["status"] = "canceled"
        return web.json_response(subscription)


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A webhook delivery's body, as Stripe sends it."""
    return {
        "id": f"evt_{int(time.time() * 1000)}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": int(time.time()),
        "type": kind,
        "livemode": False,
        "data": {"object": obj},
    }


def invoice_paid(subscription_id: str, period_end: int) -> dict[str, Any]:
    """`invoice.paid` for a renewal of `subscription_id` up to `period_end` (API 2025-03-31
    shape: the subscription under `parent.subscription_details`)."""
    return event(
        "invoice.paid",
        {
            "id": "in_fake",
            "object": "invoice",
            "status": "paid",
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": subscription_id},
            },
            "lines": {
                "object": "list",
                "data": [
                    {
                        "id": "il_fake",
                        "period": {"start": period_end - 2_592_000, "end": period_end},
                    }
                ],
            },
        },
    )
