"""A node for live end-to-end tests: the real app with its real relay manager, a clock the
test moves (`create_autospec(utcnow)`), listening on a port bound before the app is built so
that `MEDIASERVER_PUBLIC_URL` — hence every absolute URL it hands out (`play_urls`, segment
URIs) — points at it, and real players (libavformat) can open those URLs as they are."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from unittest.mock import create_autospec
from urllib.parse import urljoin

from aiohttp.test_utils import TestClient, TestServer

from mediaserver.app import build_app
from mediaserver.clock import utcnow

T = TypeVar("T")


@dataclass
class LiveNode:
    client: TestClient
    clock: Any  # create_autospec(utcnow): `advance()` moves it
    url: str  # the node's public URL

    def advance(self, **delta: float) -> None:
        self.clock.return_value += timedelta(**delta)

    def path(self, url: str) -> str:
        """The path and query of one of the node's absolute URLs, for `client.get`."""
        assert url.startswith(self.url), url
        return url[len(self.url) :]

    @staticmethod
    def segment_path(stream_id: object, uri: str) -> str:
        """The path of a live segment from its URI in `live.m3u8` (relative to it)."""
        return urljoin(f"/v1/streams/{stream_id}/live.m3u8", uri)


async def start_live_node(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_settings: Callable[..., Any],
    secrets: Any,
    **overrides: Any,
) -> LiveNode:
    """Request the `make_client` fixture too: its teardown disables the test's streams so
    later nodes do not start relays for them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    clock = create_autospec(utcnow, return_value=datetime.now(UTC))
    settings = make_settings(**{"public_url": url, "hls_segment_seconds": 2, **overrides})
    app = build_app(settings, secrets, clock=clock)
    server = TestServer(app, port=sock.getsockname()[1], socket_factory=lambda *_: sock)
    client = await aiohttp_client(server)
    return LiveNode(client, clock, url)


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout: float = 20.0, interval: float = 0.1
) -> T:
    """Poll `check` until it returns something truthy (returned), or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def relay_connected_metric(client: TestClient, stream_id: str) -> float | None:
    """`mediaserver_relay_connected` of the stream, as Prometheus scrapes it."""
    text = await (await client.get("/metrics")).text()
    prefix = f'mediaserver_relay_connected{{stream="{stream_id}"}} '
    line = next((x for x in text.splitlines() if x.startswith(prefix)), None)
    return float(line.removeprefix(prefix)) if line is not None else None
