"""The payment provider behind plans and subscriptions: a narrow interface a Stripe client
will implement, and the stub of backlog US-6.1/6.2 that the MVP runs on."""

from __future__ import annotations

import uuid
from typing import Protocol


class PaymentDeclined(Exception):
    """The provider refused to charge the payment method. Services turn it into a 402."""


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
