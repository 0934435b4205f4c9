"""Behind an ingress every request comes from the ingress's address: with
`TRUST_FORWARDED_FOR` the per-IP streaming limit counts each listener (the address the
ingress wrote into `X-Forwarded-For`), not the ingress, and a client cannot dodge it by
writing addresses of its own into the header; live HLS players are counted apart."""

from __future__ import annotations

import uuid

from aiohttp.test_utils import TestClient

from tests.accounts import user_headers
from tests.live import connected, eventually, register_stream
from tests.sources import IcecastSource


async def statuses(client: TestClient, path: str, forwarded: str, times: int) -> list[int]:
    out = []
    for _ in range(times):
        response = await client.get(path, headers={"X-Forwarded-For": forwarded})
        out.append(response.status)
    return out


async def test_the_streaming_limit_counts_listeners_not_the_ingress(make_client) -> None:
    # The test client connects from 127.0.0.1: the ingress, inside the default trusted ranges.
    client = await make_client(trust_forwarded_for=True, rate_limit_streaming_per_minute=3)
    # Any media route is limited before it is looked up: an unknown stream answers 404.
    path = f"/v1/streams/{uuid.uuid4()}/live.m3u8"
    assert await statuses(client, path, "198.51.100.1", 4) == [404, 404, 404, 429]
    # Another listener behind the same ingress has its own budget.
    assert await statuses(client, path, "198.51.100.2", 3) == [404, 404, 404]
    # The first one cannot start afresh by prepending an address of its choice.
    assert await statuses(client, path, "203.0.113.9, 198.51.100.1", 1) == [429]


async def test_without_trust_the_whole_ingress_shares_one_budget(make_client) -> None:
    client = await make_client(rate_limit_streaming_per_minute=3)
    path = f"/v1/streams/{uuid.uuid4()}/live.m3u8"
    assert await statuses(client, path, "198.51.100.1", 3) == [404, 404, 404]
    assert await statuses(client, path, "198.51.100.2", 1) == [429]


async def test_hls_players_behind_one_ingress_are_counted_apart(make_client, fake_servers):
    """Live listeners of a stream count HLS players by address and User-Agent: two phones
    of one model behind the ingress are two listeners, not one."""
    source = await fake_servers(IcecastSource)
    client = await make_client(trust_forwarded_for=True, hls_segment_seconds=2)
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)

    async def play(address: str) -> bool | None:
        headers = {"X-Forwarded-For": address, "User-Agent": "AppleCoreMedia/1.0.0.21E236"}
        response = await client.get(f"/v1/streams/{stream_id}/live.m3u8", headers=headers)
        return True if response.status == 200 else None

    await eventually(lambda: play("198.51.100.1"), timeout=20)  # once a segment is out
    await play("198.51.100.2")
    status = await (await client.get(f"/v1/streams/{stream_id}/status")).json()
    assert status["listeners"] == 2
