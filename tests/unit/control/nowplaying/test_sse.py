"""The server-sent-events response on a real loopback server: the opening snapshot, events
as published, a keepalive comment when idle, and a clean end when the feed ends."""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from control.nowplaying.events import Event, EventBus
from control.nowplaying.sse import frame, serve_events


async def test_events_keepalives_and_a_clean_end(aiohttp_client):
    bus = EventBus(None)
    stream_id = uuid.uuid4()

    async def handler(request: web.Request) -> web.StreamResponse:
        async def first() -> bytes:
            return frame("nowplaying", {"stations": []})

        subscription = bus.subscribe(stream_id)
        return await serve_events(request, bus, subscription, first, lambda r: None, 0.05)

    app = web.Application()
    app.router.add_get("/events", handler)
    client = await aiohttp_client(app)
    response = await client.get("/events")
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert await block(response) == b"retry: 3000\n\n"
    assert (await block(response)).startswith(b"event: nowplaying\ndata: ")
    assert await block(response) == b": keepalive\n\n"

    await bus.publish(Event("title", stream_id, True, {"stream_id": str(stream_id)}))
    event = await block(response)
    while event.startswith(b":"):  # keepalives meanwhile
        event = await block(response)
    assert event.startswith(b"event: title\n")
    assert bus.subscribers == 1
    bus.end_all()
    async with asyncio.timeout(5):
        while await response.content.readany():
            pass
    assert response.content.at_eof() and bus.subscribers == 0


async def block(response) -> bytes:
    """The next block (up to a blank line) of the stream, within 5 s."""
    async with asyncio.timeout(5):
        return await response.content.readuntil(b"\n\n")
