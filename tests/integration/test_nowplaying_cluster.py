"""Now playing in a cluster: two `mediaserver serve` processes sharing PostgreSQL and
Redis. The owner relays the stream and writes its history once; a live-feed client on the
other node gets the title and listener changes (Redis pub/sub), and its now-playing shows
the owner's listener count; SIGTERM ends the feeds at once."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.cluster import Cluster, Node, eventually
from tests.integration.test_cluster import dj_headers, register_on
from tests.nowplaying import next_event
from tests.sources import IcecastSource, fake_servers_fixture  # noqa: F401

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def cluster(make_database, tmp_path):
    database = await asyncio.to_thread(make_database)
    async with Cluster(database, tmp_path) as running:
        yield running


async def relaying(nodes: list[Node]) -> Node | None:
    """The one node that says it relays a stream (`/readyz`), once they agree."""
    owned = []
    for node in nodes:
        async with node.session() as http, http.get("/readyz") as response:
            owned.append((await response.json())["streams_owned"])
    return nodes[owned.index(1)] if sorted(owned) == [0, 1] else None


async def test_live_feeds_and_now_playing_span_the_cluster(cluster, fake_servers):
    source = await fake_servers(IcecastSource, title="One - First")
    a, b = await cluster.start("node-a", "node-b")
    stream_id = await register_on(a, await dj_headers(a), source)
    owner = await eventually(lambda: relaying([a, b]))  # asked without listening to it
    other = b if owner is a else a

    async with aiohttp.ClientSession(base_url=other.url) as http:

        async def on_air() -> dict | None:
            async with http.get("/v1/nowplaying") as response:
                body = await response.json()
            found = [s for s in body["stations"] if s["stream_id"] == stream_id]
            return found[0] if found and found[0]["song"] else None

        assert (await eventually(on_air))["song"]["text"] == "One - First"
        feed = await http.get(f"/v1/streams/{stream_id}/events")
        every = await http.get("/v1/nowplaying/events")
        await next_event(feed, "nowplaying")
        await next_event(every, "nowplaying")

        started = time.monotonic()
        source.set_title("Two - Second")
        for events in (feed, every):
            # (the first title may still be on its way: one event per change, in order)
            event = await next_event(events, "title", where=lambda d: d["song"]["artist"] != "One")
            assert event["song"]["text"] == "Two - Second"
        print(
            f"\ntitle change at the source → SSE client on another node: "
            f"{time.monotonic() - started:.2f} s"
        )

        async with aiohttp.ClientSession() as listener_http:
            listen = await listener_http.get(f"{owner.url}/v1/streams/{stream_id}/live.mp3")
            assert listen.status == 200
            counted = await next_event(feed, "listeners", 20, where=lambda d: d["listeners"] > 0)
            assert counted["listeners"] == 1
            station = await eventually(on_air)
            assert station["listeners"] == 1  # the owner's count, read on the other node
            listen.close()

        async with http.get(f"/v1/streams/{stream_id}/history") as response:
            songs = (await response.json())["songs"]
        assert [s["text"] for s in songs] == ["Two - Second", "One - First"]  # written once

        started = time.monotonic()
        await cluster.terminate(other)
        for events in (feed, every):  # the feeds end with the node's shutdown, not later
            while await events.content.readany():
                pass
            assert events.content.at_eof()
        assert time.monotonic() - started < 5
