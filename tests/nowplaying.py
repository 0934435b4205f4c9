"""Helpers for the now-playing tests: read server-sent events the way an `EventSource`
does, with a deadline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import ClientResponse


async def next_event(
    response: ClientResponse,
    kind: str,
    timeout: float = 15.0,
    where: Callable[[Any], bool] = lambda data: True,
) -> Any:
    """The data (JSON) of the next `kind` event of a `text/event-stream` response (that
    satisfies `where`); fails when the feed ends or none comes within `timeout`."""

    async def read() -> Any:
        name = None
        while True:
            raw = await response.content.readline()
            if not raw:
                raise AssertionError(f"the feed ended before a {kind!r} event")
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name == kind:
                data = json.loads(line.removeprefix("data: "))
                if where(data):
                    return data
            elif not line:
                name = None

    return await asyncio.wait_for(read(), timeout)
