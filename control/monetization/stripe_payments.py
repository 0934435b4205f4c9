"""`PAYMENT_PROVIDER=stripe`: plans and subscriptions charged through Stripe.

A plan is a Stripe product with one recurring price; a subscription is a Stripe customer
(carrying the payment method, and our user id in its metadata) with a subscription to that
price, created with `payment_behavior=error_if_incomplete` so that a declined first payment
fails the request (a 402 here) instead of leaving an incomplete subscription behind.
Renewals and cancellations come back through the webhook (`parse_webhook`), whose signature
`stripe.Webhook.construct_event` checks against `STRIPE_WEBHOOK_SECRET`.

Every call goes through the package's async methods over its aiohttp client, so the event
loop never waits on Stripe; `STRIPE_API_BASE` points the client elsewhere (the tests' fake).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import stripe

from control.monetization.payments import (
    BAD_SIGNATURE,
    NOT_AN_EVENT,
    PROVIDER_DOWN,
    Cancellation,
    PaymentDeclined,
    PaymentEvent,
    Renewal,
)
from mediaserver.errors import InvalidInput, UpstreamUnavailable

log = logging.getLogger(__name__)

#: Our billing intervals as Stripe's `recurring[interval]`.
INTERVALS = {"monthly": "month", "yearly": "year"}
#: Time allowed for one call to Stripe.
TIMEOUT_SECONDS = 20.0


class StripeProvider:
    """The `PaymentProvider` on Stripe's API (products, prices, customers, subscriptions)."""

    def __init__(self, api_key: str, webhook_secret: str, api_base: str | None = None) -> None:
        self._http = stripe.AIOHTTPClient(timeout=TIMEOUT_SECONDS)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http,
            max_network_retries=2,
        )
        self._webhook_secret = webhook_secret

    async def create_product(
        self, name: str, price_cents: int, currency: str, interval: str
    ) -> tuple[str, str]:
        """A product named after the plan, with one recurring price."""
        v1 = self._client.v1
        async with _StripeErrors():
            product = await v1.products.create_async(params={"name": name})
            price = await v1.prices.create_async(
                params={
                    "product": product.id,
                    "unit_amount": price_cents,
                    "currency": currency.lower(),
                    "recurring": {"interval": INTERVALS.get(interval, "month")},
                }
            )
        return product.id, price.id

    async def create_subscription(
        self, user_id: uuid.UUID, price_id: str, payment_method_id: str
    ) -> str:
        """A customer with the payment method, subscribed to the price; raises
        `PaymentDeclined` when Stripe refuses the card (or does not know the method)."""
        metadata = {"user_id": str(user_id)}
        try:
            return await self._subscribe(price_id, payment_method_id, metadata)
        except _Missing:  # no such payment method (or it belongs to another account)
            raise PaymentDeclined(payment_method_id) from None

    async def _subscribe(
        self, price_id: str, payment_method_id: str, metadata: dict[str, str]
    ) -> str:
        v1 = self._client.v1
        async with _StripeErrors():
            customer = await v1.customers.create_async(
                params={
                    "payment_method": payment_method_id,
                    "invoice_settings": {"default_payment_method": payment_method_id},
                    "metadata": metadata,
                }
            )
            subscription = await v1.subscriptions.create_async(
                params={
                    "customer": customer.id,
                    "items": [{"price": price_id}],
                    "default_payment_method": payment_method_id,
                    "payment_behavior": "error_if_incomplete",
                    "metadata": metadata,
                }
            )
        return subscription.id

    async def cancel_subscription(self, subscription_id: str) -> None:
        """Cancel at once; a subscription Stripe no longer has counts as canceled."""
        try:
            async with _StripeErrors():
                await self._client.v1.subscriptions.cancel_async(subscription_id)
        except _Missing:
            log.info("stripe subscription %s was already gone", subscription_id)

    async def parse_webhook(self, payload: bytes, signature: str | None) -> PaymentEvent | None:
        """`invoice.paid` → a renewal up to the end of the period paid for;
        `customer.subscription.deleted` → a cancellation; anything else → None."""
        try:
            event = stripe.Webhook.construct_event(payload, signature, self._webhook_secret)
        except stripe.SignatureVerificationError:
            raise InvalidInput(BAD_SIGNATURE) from None
        except ValueError:
            raise InvalidInput(NOT_AN_EVENT) from None
        body: dict[str, Any] = event.to_dict()
        kind, obj = body.get("type"), body.get("data", {}).get("object", {})
        if kind == "customer.subscription.deleted" and isinstance(obj.get("id"), str):
            return Cancellation(obj["id"])
        if kind == "invoice.paid":
            subscription_id, period_end = _invoice_subscription(obj)
            if subscription_id is not None and period_end is not None:
                return Renewal(subscription_id, datetime.fromtimestamp(period_end, UTC))
        return None

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]


def _invoice_subscription(invoice: dict[str, Any]) -> tuple[str | None, int | None]:
    """The subscription an invoice pays for and the end of the period it covers. The
    subscription is at `parent.subscription_details.subscription` since API 2025-03-31,
    at `subscription` before; the period is its subscription line's."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    subscription = details.get("subscription") or invoice.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    ends = [
        line["period"]["end"]
        for line in (invoice.get("lines") or {}).get("data", [])
        if isinstance(line.get("period"), dict) and isinstance(line["period"].get("end"), int)
    ]
    end = max(ends) if ends else invoice.get("period_end")
    return (
        subscription if isinstance(subscription, str) else None,
        end if isinstance(end, int) else None,
    )


class _Missing(Exception):
    """Stripe has no such object (404 `resource_missing`)."""


class _StripeErrors:
    """Stripe's errors as ours: a card error is a declined payment (402), a missing
    object `_Missing`, anything else (Stripe down, a bad key) a 503 with the cause logged."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: Any, tb: Any) -> bool:
        if exc is None or not isinstance(exc, stripe.StripeError):
            return False
        if isinstance(exc, stripe.CardError):
            raise PaymentDeclined(exc.code or "card_declined") from None
        if isinstance(exc, stripe.InvalidRequestError) and exc.code == "resource_missing":
            raise _Missing(str(exc)) from None
        log.error("stripe request failed: %s %s %s", type(exc).__name__, exc.http_status, exc.code)
        raise UpstreamUnavailable(PROVIDER_DOWN) from None
