"""Reading Stripe's webhook deliveries: the signature (Stripe's scheme, with its replay
window), and the invoice shapes of the API versions before and after 2025-03-31."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from control.monetization.payments import Cancellation, Renewal
from control.monetization.stripe_payments import StripeProvider
from mediaserver.errors import InvalidInput
from tests.fakestripe import WEBHOOK_SECRET, event, invoice_paid, sign

END = 1_900_000_000


@pytest.fixture
async def provider():
    stripe = StripeProvider("sk_test_unused", WEBHOOK_SECRET, "http://127.0.0.1:9")
    yield stripe
    await stripe.close()


async def read(provider, body, **signing):
    payload = json.dumps(body).encode()
    return await provider.parse_webhook(payload, sign(payload, **signing))


async def test_the_current_invoice_shape_is_a_renewal(provider) -> None:
    renewal = await read(provider, invoice_paid("sub_1", END))
    assert renewal == Renewal("sub_1", datetime.fromtimestamp(END, UTC))


@pytest.mark.parametrize("subscription", ["sub_2", {"id": "sub_2", "object": "subscription"}])
async def test_the_older_invoice_shape_is_a_renewal_too(provider, subscription) -> None:
    invoice = {"object": "invoice", "subscription": subscription, "period_end": END}
    renewal = await read(provider, event("invoice.paid", invoice))
    assert renewal == Renewal("sub_2", datetime.fromtimestamp(END, UTC))


async def test_an_invoice_of_no_subscription_changes_nothing(provider) -> None:
    assert await read(provider, event("invoice.paid", {"object": "invoice"})) is None


async def test_a_deleted_subscription_is_a_cancellation(provider) -> None:
    body = event("customer.subscription.deleted", {"id": "sub_3", "object": "subscription"})
    assert await read(provider, body) == Cancellation("sub_3")


@pytest.mark.parametrize(
    "signing",
    [
        {"secret": "whsec_someone_else"},
        {"timestamp": int(time.time()) - 3600},  # a replay, past Stripe's 5-minute window
    ],
)
async def test_a_bad_or_stale_signature_is_refused(provider, signing) -> None:
    with pytest.raises(InvalidInput, match="Invalid Stripe-Signature"):
        await read(provider, invoice_paid("sub_1", END), **signing)


async def test_a_missing_signature_or_a_body_that_is_no_event_is_refused(provider) -> None:
    with pytest.raises(InvalidInput, match="Invalid Stripe-Signature"):
        await provider.parse_webhook(b"{}", None)
    payload = b"not json"
    with pytest.raises(InvalidInput, match="not a Stripe event"):
        await provider.parse_webhook(payload, sign(payload))
