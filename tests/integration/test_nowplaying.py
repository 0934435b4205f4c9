"""Now playing everywhere (issue 12): song history written by the relay, the stations on
air in one call, the live feeds (server-sent events), Icecast's status JSON and playlist
files — with a real relay of a fake source, on real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from mediaserver.wiring import end_feeds
from tests.accounts import user_headers
from tests.integration import test_push_ingest as push
from tests.live import connected, ended, eventually, register_stream
from tests.livenode import start_live_node
from tests.loopback import free_port
from tests.nowplaying import next_event
from tests.sources import IcecastSource, fake_servers_fixture  # noqa: F401 - fake_servers

PUBLIC_URL = "https://radio.example.com"


@pytest.fixture
async def node(make_client):
    return await make_client(hls_segment_seconds=2, public_url=PUBLIC_URL)


async def history(client, stream_id, **query):
    response = await client.get(f"/v1/streams/{stream_id}/history", params=query)
    assert response.status == 200, await response.text()
    return await response.json()


def station_of(body, stream_id):
    return next((s for s in body["stations"] if s["stream_id"] == stream_id), None)


async def test_titles_make_the_history_and_reach_the_live_feeds(node, fake_servers):
    source = await fake_servers(IcecastSource, title="Artist One - Opening")
    _, dj = await user_headers(node)
    stream_id = await register_stream(node, source, dj)
    await connected(node, stream_id)
    first = await eventually(lambda: _total(node, stream_id, 1))
    assert first["songs"][0]["artist"] == "Artist One"

    every = await node.get("/v1/nowplaying/events")
    assert every.headers["Content-Type"].startswith("text/event-stream")
    one = await node.get(f"/v1/streams/{stream_id}/events")
    snapshot = await next_event(every, "nowplaying")
    assert station_of(snapshot, stream_id)["song"]["text"] == "Artist One - Opening"
    assert (await next_event(one, "nowplaying"))["stations"][0]["stream_id"] == stream_id

    source.set_title("Artist Two - Follow Up")
    for feed in (every, one):
        event = await next_event(
            feed, "title", where=lambda data: data["song"]["artist"] != "Artist One"
        )
        assert event["stream_id"] == stream_id
        assert event["song"]["artist"] == "Artist Two"
        assert event["song"]["title"] == "Follow Up"

    latest = await history(node, stream_id, per_page=1)
    assert latest["total"] == 2 and latest["per_page"] == 1
    assert latest["songs"][0]["text"] == "Artist Two - Follow Up"
    assert latest["songs"][0]["ended_at"] is None
    earlier = (await history(node, stream_id, per_page=1, page=2))["songs"][0]
    assert (earlier["artist"], earlier["title"]) == ("Artist One", "Opening")
    assert earlier["ended_at"] == latest["songs"][0]["started_at"]

    # A listener arrives: the listener count moves on the stream's feed.
    listener = await node.get(f"/v1/streams/{stream_id}/live.mp3")
    await next_event(one, "listeners", 20, where=lambda data: data["listeners"] >= 1)
    listener.close()

    # A script asks for the state now and the next change, and gets a response that ends.
    once = await node.get(f"/v1/streams/{stream_id}/events", params={"max_events": "1"})
    assert (await next_event(once, "nowplaying"))["stations"][0]["stream_id"] == stream_id
    assert await ended(once)

    await end_feeds(node.app)  # what SIGTERM runs: the feeds end, cleanly
    assert await ended(every) and await ended(one)


async def _total(client, stream_id, total):
    body = await history(client, stream_id)
    return body if body["total"] == len(body["songs"]) == total else None


async def test_now_playing_lists_public_stations_on_air_in_one_call(node, fake_servers):
    source = await fake_servers(IcecastSource, title="Artist One - Opening")
    _, dj = await user_headers(node)
    public = await register_stream(node, source, dj, description="Weekly")
    private = await register_stream(node, source, dj, visibility="private")
    await connected(node, public)
    await connected(node, private, dj)

    async def listed():
        response = await node.get("/v1/nowplaying")
        assert response.headers["Cache-Control"] == "public, max-age=1"
        body = await response.json()
        found = station_of(body, public)
        # The relay knows the title at once; its start, once the history has it.
        return (body, found) if found and found["song"] and found["song"]["started_at"] else None

    body, station = await eventually(listed)
    assert station_of(body, private) is None
    assert station["name"] == "Friday Night" and station["genre"] == "House"
    assert station["song"]["artist"] == "Artist One"
    assert station["bitrate_kbps"] == 128 and station["live_since"]
    assert station["listeners"] == 0
    base = f"{PUBLIC_URL}/v1/streams/{public}"
    assert station["links"]["mp3"] == f"{base}/live.mp3"
    assert station["links"]["pls"] == f"{base}/listen.pls"

    # Icecast's status JSON: one source is an object, two a list.
    async def icestats(count):
        stats = (await (await node.get("/status-json.xsl")).json())["icestats"]
        sources = stats.get("source")
        sources = [sources] if isinstance(sources, dict) else sources or []
        mine = [s for s in sources if s["listenurl"].startswith(f"{PUBLIC_URL}/v1/streams/")]
        return (stats, mine) if len(mine) == count else None

    stats, (only,) = await eventually(lambda: icestats(1))
    assert isinstance(stats["source"], dict)
    assert only["listenurl"] == f"{base}/live.mp3" and only["title"] == "Artist One - Opening"
    assert only["server_name"] == "Friday Night" and only["server_description"] == "Weekly"
    assert only["bitrate"] == 128 and only["genre"] == "House" and only["listeners"] == 0
    assert stats["host"] == "radio.example.com"
    second = await register_stream(node, source, dj, name="Second")
    await connected(node, second)
    stats, both = await eventually(lambda: icestats(2))
    assert isinstance(stats["source"], list) and len(both) == 2


async def test_playlist_files_open_the_stream_in_any_player(node, fake_servers):
    source = await fake_servers(IcecastSource)
    _, dj = await user_headers(node)
    public = await register_stream(node, source, dj)
    private = await register_stream(node, source, dj, visibility="private")

    response = await node.get(f"/v1/streams/{public}/listen.m3u")
    assert response.status == 200 and response.content_type == "audio/x-mpegurl"
    url = f"{PUBLIC_URL}/v1/streams/{public}/live.mp3"
    assert await response.text() == f"#EXTM3U\n#EXTINF:-1,Friday Night\n{url}\n"
    response = await node.get(f"/v1/streams/{public}/listen.pls")
    assert response.status == 200 and response.content_type == "audio/x-scpls"
    assert f"File1={url}\n" in await response.text()

    assert (await node.get(f"/v1/streams/{private}/listen.m3u")).status == 401
    owners = await node.get(f"/v1/streams/{private}/listen.pls", headers=dj)
    assert owners.status == 200
    assert "?grant=" in await owners.text()  # a player sends no Authorization header


async def test_history_follows_the_status_access_rules(node, fake_servers):
    source = await fake_servers(IcecastSource)
    _, dj = await user_headers(node)
    private = await register_stream(node, source, dj, visibility="private")
    assert (await node.get(f"/v1/streams/{private}/history")).status == 401
    assert (await node.get(f"/v1/streams/{private}/events")).status == 401
    assert (await node.get(f"/v1/streams/{private}/history", headers=dj)).status == 200
    missing = "/v1/streams/00000000-0000-0000-0000-000000000000/history"
    assert (await node.get(missing)).status == 404


async def test_a_title_already_playing_is_not_recorded_twice(node, fake_servers):
    """A takeover's new relay announces the song playing again: the history keeps one
    row (the cluster's owner writes, and a repeated title changes nothing)."""
    source = await fake_servers(IcecastSource, title="Same - Song")
    _, dj = await user_headers(node)
    stream_id = await register_stream(node, source, dj)
    await connected(node, stream_id)
    await eventually(lambda: _total(node, stream_id, 1))
    await node.patch(f"/v1/streams/{stream_id}", json={"enabled": False}, headers=dj)
    await node.patch(f"/v1/streams/{stream_id}", json={"enabled": True}, headers=dj)
    await connected(node, stream_id)
    # Titles are written in order: once the next one is in, the repeat has been handled.
    source.set_title("Next - Song")
    texts = [s["text"] for s in (await eventually(lambda: _total(node, stream_id, 2)))["songs"]]
    assert texts == ["Next - Song", "Same - Song"]


async def test_a_pushed_streams_titles_make_its_history(
    aiohttp_client, make_client, make_settings, test_secrets
):
    """BUTT's metadata updates (`/admin/metadata`) feed the history as ICY titles do."""
    port = free_port()
    node = await start_live_node(aiohttp_client, make_settings, test_secrets, ingest_port=port)
    node.ingest_port = port
    stream_id, ingest, _ = await push.register_push(node)
    head = push.butt_head(ingest["mount"], ingest["password"])
    _, writer, answer = await push.source_request(port, head)
    assert answer.startswith(b"HTTP/1.0 200 OK")
    feeding = asyncio.create_task(push.feed(writer, 30))
    try:
        reader, meta = await asyncio.open_connection("127.0.0.1", port)
        meta.write(
            f"GET /admin/metadata?mount={ingest['mount']}&mode=updinfo&song=DJ%20-%20Track%202 "
            f"HTTP/1.0\r\nAuthorization: {push.basic(ingest['password'])}\r\n\r\n".encode()
        )
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.0 200 OK")
        meta.close()
        songs = (await eventually(lambda: _total(node.client, stream_id, 1)))["songs"]
        assert (songs[0]["artist"], songs[0]["title"]) == ("DJ", "Track 2")
    finally:
        feeding.cancel()
        writer.close()


async def test_taking_a_stream_off_air_ends_the_song_it_was_playing(node, fake_servers):
    """Disabled (or deleted): its history shows when the last song stopped, not a song
    playing for ever."""
    source = await fake_servers(IcecastSource, title="Artist One - Last Call")
    _, dj = await user_headers(node)
    stream_id = await register_stream(node, source, dj)
    await connected(node, stream_id)
    playing = await eventually(lambda: _total(node, stream_id, 1))
    assert playing["songs"][0]["ended_at"] is None

    off = await node.patch(f"/v1/streams/{stream_id}", json={"enabled": False}, headers=dj)
    assert off.status == 200
    response = await node.get(f"/v1/streams/{stream_id}/history", headers=dj)
    assert response.status == 200, await response.text()
    song = (await response.json())["songs"][0]
    assert song["text"] == "Artist One - Last Call" and song["ended_at"] is not None
    assert song["ended_at"] >= song["started_at"]
