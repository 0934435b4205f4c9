"""A node for the streams tests: the real app on a real database, with a relay control that
records what it is asked, a clock the test moves, and fake sources to register."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import create_autospec

from aiohttp.test_utils import TestClient

from mediaserver.app import build_app
from mediaserver.clock import utcnow
from mediaserver.migrate import apply_migrations
from relay.status import RelaySnapshot, StreamSource
from tests.accounts import user_headers
from tests.loopback import LoopbackServer
from tests.sources import FakeSource

STREAMS = "/v1/streams"
PUBLIC_URL = "https://radio.example.com"
TITLE = "DJ Example - Opening Track"


@dataclass
class RecordingRelay:
    """A `RelayControl` that runs nothing: it records the calls, and answers snapshots the
    test sets in `snapshots`."""

    calls: list[tuple[str, uuid.UUID]] = field(default_factory=list)
    sources: dict[uuid.UUID, StreamSource] = field(default_factory=dict)
    snapshots: dict[uuid.UUID, RelaySnapshot] = field(default_factory=dict)

    async def ensure(self, source: StreamSource) -> None:
        self.calls.append(("ensure", source.stream_id))
        self.sources[source.stream_id] = source

    async def stop(self, stream_id: uuid.UUID) -> None:
        self.calls.append(("stop", stream_id))

    async def disconnect_listeners(self, stream_id: uuid.UUID) -> None:
        self.calls.append(("disconnect", stream_id))

    def snapshot(self, stream_id: uuid.UUID) -> RelaySnapshot | None:
        return self.snapshots.get(stream_id)


@dataclass
class Node:
    client: TestClient
    relay: RecordingRelay
    clock: Any  # create_autospec(utcnow): set `clock.return_value` to move time

    def advance(self, **delta: float) -> None:
        self.clock.return_value += timedelta(**delta)


async def start_node(
    make_client: Callable[..., Any],
    make_settings: Callable[..., Any],
    secrets: Any,
    database_url: str | None = None,
) -> Node:
    relay = RecordingRelay()
    clock = create_autospec(utcnow, return_value=datetime.now(UTC))
    overrides: dict[str, Any] = {"public_url": PUBLIC_URL}
    if database_url is not None:
        overrides["database_url"] = database_url
    app = build_app(make_settings(**overrides), secrets, clock=clock, relay=relay)
    return Node(await make_client(app), relay, clock)


async def fresh_database(make_database: Callable[[], str]) -> str:
    """An empty, migrated database of its own, for tests that count rows."""
    url = await asyncio.to_thread(make_database)
    await apply_migrations(url)
    return url


def stream_body(source: LoopbackServer, **changes: Any) -> dict[str, Any]:
    """The backlog's example body for `source` (a fake source, or any loopback server)."""
    body: dict[str, Any] = {
        "name": "Friday Night DJ Set",
        "shoutcast_url": source.url,
        "mount": getattr(source, "mount", "/live"),
        "stream_key": getattr(source, "admin_password", "changeme"),
        "genre": "House",
        "description": "Weekly house mix",
        "visibility": "public",
        "monetization_enabled": False,
    }
    body.update(changes)
    return body


async def register_stream(
    client: TestClient, headers: dict[str, str], source: FakeSource, **changes: Any
) -> str:
    """Register `source` as the caller; the new stream's id."""
    response = await client.post(STREAMS, json=stream_body(source, **changes), headers=headers)
    assert response.status == 201, await response.text()
    return str((await response.json())["stream_id"])


async def subscriber_of(client: TestClient, dj_headers: dict[str, str]) -> dict[str, str]:
    """A new listener holding an active subscription to a new plan of the DJ's."""
    plan = {"name": "Premium", "price_cents": 500, "currency": "USD", "billing_interval": "monthly"}
    created = await client.post("/v1/monetization/plans", json=plan, headers=dj_headers)
    assert created.status == 201, await created.text()
    _, headers = await user_headers(client, "listener")
    body = {"plan_id": (await created.json())["plan_id"], "stripe_payment_method_id": "pm_ok"}
    subscribed = await client.post("/v1/monetization/subscriptions", json=body, headers=headers)
    assert subscribed.status == 201, await subscribed.text()
    return headers
