"""Helpers for the live-stream tests that run a real relay: register a fake source, wait
for the relay to connect, read a never-ending response for a while, poll with a deadline."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.livenode import eventually
from tests.sources import FakeSource

__all__ = ["connected", "ended", "eventually", "read_for", "register_stream"]


async def register_stream(
    client: TestClient, source: FakeSource, headers: dict[str, str], **fields: Any
) -> str:
    """Register `source` as the DJ whose `headers` these are; the new stream's id."""
    body = {
        "name": "Friday Night",
        "shoutcast_url": source.url,
        "mount": source.mount,
        "stream_key": source.admin_password,
        "genre": "House",
        **fields,
    }
    response = await client.post("/v1/streams", json=body, headers=headers)
    assert response.status == 201, await response.text()
    return str((await response.json())["stream_id"])


async def read_for(response: ClientResponse, seconds: float) -> bytes:
    """What the body delivers within `seconds` (less if it ends)."""
    data = bytearray()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = await asyncio.wait_for(
                response.content.read(65536), deadline - time.monotonic()
            )
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def ended(response: ClientResponse, timeout: float = 5.0) -> bool:
    """Whether the body ends (cleanly) within `timeout`, reading whatever still comes."""

    async def drained() -> bool:
        while await response.content.read(65536):
            pass
        return True

    await asyncio.wait_for(drained(), timeout)
    return response.content.at_eof()


async def connected(
    client: TestClient, stream_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """The stream's status once the relay reports itself connected to the source."""

    async def check() -> dict[str, Any] | None:
        response = await client.get(f"/v1/streams/{stream_id}/status", headers=headers)
        body = await response.json()
        return body if body.get("relay_connected") else None

    return dict(await eventually(check))
