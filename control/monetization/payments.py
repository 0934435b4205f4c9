"""The payment provider behind plans and subscriptions: a narrow interface, implemented by
`control.monetization.stripe.StripeProvider` (`PAYMENT_PROVIDER=stripe`) and by the stub of
backlog US-6.1/6.2 (`PAYMENT_PROVIDER=stub`, staging and demos only: it charges nothing)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mediaserver.errors import NotFound

#: The messages of the provider's errors, as clients (and Stripe) see them.
BAD_SIGNATURE = "Invalid Stripe-Signature"
NOT_AN_EVENT = "Webhook body is not a Stripe event"
PROVIDER_DOWN = "The payment provider is unavailable; try again later"
NO_WEBHOOKS = "Payment webhooks are received with PAYMENT_PROVIDER=stripe only"


class PaymentDeclined(Exception):
    """The provider refused to charge the payment method. Services turn it into a 402."""


@dataclass(frozen=True, slots=True)
class Renewal:
    """The provider was paid for another period of `subscription_id`, up to `paid_until`."""

    subscription_id: str
    paid_until: datetime


@dataclass(frozen=True, slots=True)
class Cancellation:
    """The provider ended `subscription_id` (canceled, or unpaid for good)."""

    subscription_id: str


PaymentEvent = Renewal | Cancellation


class PaymentProvider(Protocol):
    """What the monetization service needs from a payment provider (Stripe's shape)."""

    async def create_product(
        self, name: str, price_cents: int, currency: str, interval: str
    ) -> tuple[str, str]:
        """Create a product with one recurring price; returns (product_id, price_id)."""
        ...

    async def create_subscription(
        self, user_id: uuid.UUID, price_id: str, payment_method_id: str
    ) -> str:
        """Charge the payment method and start a subscription; returns its id.
        Raises `PaymentDeclined` when the payment method is refused."""
        ...

    async def cancel_subscription(self, subscription_id: str) -> None:
        """Stop renewing the subscription. Must be idempotent: the service may retry it."""
        ...

    async def parse_webhook(self, payload: bytes, signature: str | None) -> PaymentEvent | None:
        """Check a webhook delivery's signature and read it: None for an event that changes
        nothing here. Raises `InvalidInput` when the signature does not match."""
        ...

    async def close(self) -> None:
        """Release the provider's connections."""
        ...


class StubPaymentProvider:
    """Backlog stub: fixed ids, and the payment method "fail_pm" is always declined."""

    product_id = "test_prod"
    price_id = "test_price"
    subscription_id = "test_sub"
    declined_payment_method = "fail_pm"

    async def create_product(
        self, name: str, price_cents: int, currency: str, interval: str
    ) -> tuple[str, str]:
        return self.product_id, self.price_id

    async def create_subscription(
        self, user_id: uuid.UUID, price_id: str, payment_method_id: str
    ) -> str:
        if payment_method_id == self.declined_payment_method:
            raise PaymentDeclined(payment_method_id)
        return self.subscription_id

    async def cancel_subscription(self, subscription_id: str) -> None:
        return None

    async def parse_webhook(self, payload: bytes, signature: str | None) -> PaymentEvent | None:
        raise NotFound(NO_WEBHOOKS)  # no webhook endpoint without Stripe

    async def close(self) -> None:
        return None
