"""Request and response bodies of the monetization routes (backlog US-6.1, US-6.2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from control.schemas import Name, PageQuery

BillingInterval = Literal["monthly", "yearly"]
SubscriptionStatus = Literal["active", "canceled", "expired"]


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isascii() or not value.isalpha():
        raise ValueError("must be a 3-letter currency code such as USD")
    return value.upper()


Currency = Annotated[
    str, Field(examples=["USD"], description="ISO 4217, any letter case"), AfterValidator(_currency)
]
Feature = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class PlanIn(BaseModel):
    """`POST /v1/monetization/plans`."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    # strict: `true`, `5.0` and `"500"` are not prices; bounded by the integer column.
    price_cents: int = Field(ge=0, le=2_147_483_647, strict=True, examples=[500])
    currency: Currency
    billing_interval: BillingInterval
    features: list[Feature] = Field(
        default_factory=list, max_length=50, examples=[["live_streams", "playlist_access"]]
    )


class PlanOut(BaseModel):
    plan_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    price_cents: int
    currency: str
    billing_interval: BillingInterval
    features: list[str]
    stripe_product_id: str
    stripe_price_id: str
    created_at: datetime
    #: Created by an admin: a subscription opens every DJ's monetized content, not only the
    #: owner's.
    platform_wide: bool


NO_PLANS = "There are no subscription plans yet. DJs create them with POST /v1/monetization/plans."
NO_SUBSCRIPTIONS = (
    "You have no subscriptions yet. Subscribe to a plan with POST /v1/monetization/subscriptions."
)


class PlanList(BaseModel):
    """US-9.1: `message` when there are no plans, else null."""

    plans: list[PlanOut]
    page: int
    per_page: int
    total: int
    message: str | None = Field(default=None, examples=[None, NO_PLANS])


class SubscribeIn(BaseModel):
    """`POST /v1/monetization/subscriptions`."""

    model_config = ConfigDict(extra="forbid")

    plan_id: uuid.UUID
    stripe_payment_method_id: str = Field(min_length=1, max_length=255, examples=["test_pm"])


class SubscriptionOut(BaseModel):
    subscription_id: uuid.UUID
    plan_id: uuid.UUID
    #: `expired` once `expires_at` has passed, whatever the stored row still says.
    status: SubscriptionStatus
    stripe_subscription_id: str
    created_at: datetime
    expires_at: datetime
    canceled_at: datetime | None


class SubscriptionList(BaseModel):
    """US-9.1: `message` when the caller has no subscriptions, else null."""

    subscriptions: list[SubscriptionOut]
    page: int
    per_page: int
    total: int
    message: str | None = Field(default=None, examples=[None, NO_SUBSCRIPTIONS])


class WebhookOut(BaseModel):
    """What the payment webhook answers the provider."""

    received: bool = Field(description="The event's signature checked out")
    changed: bool = Field(
        description="A subscription here was renewed or ended (false for events about "
        "subscriptions this server does not hold, and for events it does not act on)"
    )


class PlanListQuery(PageQuery):
    """`GET /v1/monetization/plans`: `owner_id` lists the plans that open that DJ's
    monetized content (their own, and the platform-wide ones); the paywall's 403 links
    here as `plans_url`."""

    owner_id: uuid.UUID | None = None
