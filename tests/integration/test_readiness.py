"""`/readyz` (the chart's readiness probe) against `/healthz` (liveness) and `/v1/health`."""

from __future__ import annotations

from mediaserver.wiring import draining


async def test_ready_until_shutdown_begins(make_client):
    client = await make_client()
    ready = await client.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body["status"] == "ready" and body["node"]
    assert "members" not in body  # no REDIS_URL: a node alone

    await draining(client.app)  # what SIGTERM runs first (aiohttp `on_shutdown`)
    refused = await client.get("/readyz")
    assert refused.status == 503
    assert (await refused.json())["error"] == "Not ready: shutting down"
    # Liveness does not change: the node is finishing its work, not broken.
    assert (await client.get("/healthz")).status == 200


async def test_a_clustered_node_names_its_members(make_client, redis_url):
    client = await make_client(redis_url=redis_url, node_name="ready-test")
    body = await (await client.get("/readyz")).json()
    assert body["node"] == "ready-test"
    assert "ready-test" in body["members"] and body["streams_owned"] == 0
