"""A relay's own connection to its source passes the URL guard too (issue 11: every
server-side fetch): a source that redirects the relay to, or a host name that comes to
resolve to, a private address is never connected to."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from control.urlguard import public_address
from relay.source import SourceClient


class Sink:
    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.failed = asyncio.Event()

    def on_connected(self, head: Any) -> None:
        pass

    def on_frames(self, frames: Any) -> None:
        pass

    def on_metadata(self, fields: Any) -> None:
        pass

    def on_disconnected(self, reason: str) -> None:
        self.reasons.append(reason)
        self.failed.set()


async def test_a_relay_never_connects_to_a_private_address():
    reached = 0

    async def internal(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal reached
        reached += 1
        writer.close()

    server = await asyncio.start_server(internal, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = Sink()
    # "localhost": a name, as a rebinding DNS would answer with a loopback address.
    client = SourceClient(
        f"http://localhost:{port}/live", sink, backoff=(5.0, 5.0), address_of=public_address
    )
    task = asyncio.create_task(client.run())
    try:
        async with asyncio.timeout(5):
            await sink.failed.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        server.close()
        await server.wait_closed()
    assert reached == 0
    assert "non-public address" in sink.reasons[0]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "64:ff9b::a9fe:a9fe"])
async def test_public_address_refuses_internal_hosts(host):
    with pytest.raises(OSError, match="non-public"):
        await public_address(host, 80)


async def test_public_address_of_a_public_literal_is_itself():
    assert await public_address("93.184.216.34", 80) == "93.184.216.34"
