"""Behind an ingress every request comes from the ingress's address: with
`TRUST_FORWARDED_FOR` the per-IP streaming limit counts each listener (the address the
ingress wrote into `X-Forwarded-For`), not the ingress, and a client cannot dodge it by
writing addresses of its own into the header."""

from __future__ import annotations

import uuid

from aiohttp.test_utils import TestClient


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
