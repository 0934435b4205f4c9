"""Server-sent events (WHATWG HTML §9.2): a never-ending `text/event-stream` response that
writes each event of a `Subscription` as it comes, and a comment line every
`KEEPALIVE_SECONDS` so proxies and clients keep an idle connection open."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from control.nowplaying.events import EventBus, Subscription

#: A comment line this often when nothing else is sent.
KEEPALIVE_SECONDS = 15.0
#: What a client's EventSource waits before reconnecting after the feed ends (ms).
RETRY_MS = 3000


def frame(kind: str, data: Any) -> bytes:
    """One event: `event:` names it, `data:` is JSON on one line."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def serve_events(
    request: web.Request,
    bus: EventBus,
    subscription: Subscription,
    first: Callable[[], Awaitable[bytes]],
    before_prepare: Callable[[web.StreamResponse], None],
    keepalive: float = KEEPALIVE_SECONDS,
    max_events: int | None = None,
) -> web.StreamResponse:
    """Send `first()` (the state now, read once subscribed: no change falls between),
    then every event of `subscription` until the client leaves, the subscription ends
    (shutdown, too far behind) or the server stops. An error `first` raises is the
    response (nothing has been sent yet). `max_events`: end after that many events, the
    opening one included."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: pass each event on at once
        }
    )
    try:
        opening = f"retry: {RETRY_MS}\n\n".encode() + await first()
        before_prepare(response)
        await response.prepare(request)
        await response.write(opening)
        left = max_events - 1 if max_events is not None else None
        while not subscription.ended and left != 0:
            event = await subscription.next(keepalive)
            if event is not None:
                await response.write(frame(event.kind, event.data))
                left = left - 1 if left is not None else None
            elif not subscription.ended:
                await response.write(b": keepalive\n\n")
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client left
    finally:
        bus.unsubscribe(subscription)
    return response
