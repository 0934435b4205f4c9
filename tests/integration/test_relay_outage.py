"""US-2.5's 2-minute rule with the real relay: a node relaying a (fake) Icecast source, the
source killed and brought back, and `GET /v1/streams/{id}/status` read while the node's
clock is moved past the thresholds (`relay_connected` true up to 2 minutes after the last
heartbeat, false after, 503 past 5 minutes, true again once the source is back)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.accounts import user_headers
from tests.livenode import LiveNode, eventually, relay_connected_metric, start_live_node
from tests.sources import IcecastSource
from tests.streams import register_stream


@pytest.fixture
async def live_node(aiohttp_client, make_client, make_settings, test_secrets) -> LiveNode:
    return await start_live_node(aiohttp_client, make_settings, test_secrets)


async def test_status_follows_the_two_minute_rule_through_a_source_outage(live_node, fake_servers):
    node, client = live_node, live_node.client
    source = await fake_servers(IcecastSource, title="Before The Outage")
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, dj, source)
    status_url = f"/v1/streams/{stream_id}/status"

    async def status() -> dict:
        response = await client.get(status_url)
        assert response.status == 200, await response.text()
        return await response.json()

    async def beating():
        body = await status()
        return body if body["relay_connected"] and body["last_heartbeat"] else None

    first = await eventually(beating)
    assert first["current_track"] == "Before The Outage"

    await source.stop()  # the DJ's server dies: connections dropped, port refused

    async def relay_lost():
        return await relay_connected_metric(client, stream_id) == 0.0

    await eventually(relay_lost)
    # Within two minutes of the last heartbeat the relay still counts as connected.
    assert (await status())["relay_connected"] is True
    node.advance(minutes=2)
    assert (await status())["relay_connected"] is True
    node.advance(seconds=1)
    offline = await status()
    assert offline["relay_connected"] is False
    assert offline["listeners"] == 0 and offline["uptime"] is None
    node.advance(minutes=2, seconds=58)  # 4 min 59 s
    assert (await status())["relay_connected"] is False
    node.advance(seconds=2)  # 5 min 1 s
    gone = await client.get(status_url)
    assert gone.status == 503
    body = await gone.json()
    assert body["code"] == 503 and "5 minutes" in body["error"]

    source.set_title("After The Outage")
    await source.start()  # back on the same port: the relay reconnects by itself

    async def back():  # reconnected, and its first beat since recorded (a moment later)
        response = await client.get(status_url)
        body = await response.json() if response.status == 200 else {}
        beat_again = body.get("last_heartbeat") not in (None, first["last_heartbeat"])
        return body if body.get("relay_connected") and beat_again else None

    again = await eventually(back, timeout=40)
    assert again["current_track"] == "After The Outage"
    stamps = [datetime.fromisoformat(b["last_heartbeat"]) for b in (first, again)]
    assert stamps[1] - stamps[0] >= timedelta(minutes=5)  # a beat at the moved clock
    assert await relay_connected_metric(client, stream_id) == 1.0
