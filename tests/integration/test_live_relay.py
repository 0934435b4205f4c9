"""Live streams end to end on loopback: a real (fake) SHOUTcast/Icecast source, our node
relaying it, and real decoders listening to `live.mp3` and `live.m3u8`."""

from __future__ import annotations

import asyncio
import time

import pytest

from relay.icy import IcyDemuxer, Metadata
from tests.accounts import bearer, user_headers
from tests.audio import decode
from tests.live import connected, eventually, read_for, register_stream
from tests.sources import IcecastSource, ShoutcastV1Source, ShoutcastV2Source


@pytest.fixture
async def node(make_client):
    """A node with short HLS segments. Without MEDIASERVER_PUBLIC_URL, segment URLs are
    absolute on the origin the client used."""

    async def make(**overrides):
        return await make_client(hls_segment_seconds=2, **overrides)

    return make


@pytest.mark.parametrize("kind", [IcecastSource, ShoutcastV1Source, ShoutcastV2Source])
async def test_listeners_hear_the_source_as_mp3_with_titles(node, fake_servers, kind):
    source = await fake_servers(kind, title="Artist One - Opening")
    client = await node()
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    status = await connected(client, stream_id)
    assert status["bitrate"] == "128kbps"

    response = await client.get(
        f"/v1/streams/{stream_id}/live.mp3",
        headers={"Icy-MetaData": "1", "X-Request-ID": "player-1", "Origin": "https://web.example"},
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    # A streamed response carries the node's headers like every other one.
    assert response.headers["X-Request-ID"] == "player-1"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    # Audio is not a document: no CSP (it would block a browser tab's own player).
    assert "Content-Security-Policy" not in response.headers
    assert response.headers["icy-name"] == "Friday Night"
    assert response.headers["icy-br"] == "128"  # from the MP3 frame headers
    assert response.headers["Transfer-Encoding"] == "chunked"  # US-2.7, for HTTP/1.1
    assert "Content-Length" not in response.headers
    metaint = int(response.headers["icy-metaint"])
    first = await read_for(response, 1.5)
    source.set_title("Artist Two - Follow Up")
    rest = await read_for(response, 2.5)
    response.close()

    events = IcyDemuxer(metaint).feed(first + rest)
    titles = [e.title for e in events if isinstance(e, Metadata)]
    assert titles[0] == "Artist One - Opening" and titles[-1] == "Artist Two - Follow Up"
    audio = b"".join(e.data for e in events if not isinstance(e, Metadata))
    decoded = await asyncio.to_thread(decode, audio, format="mp3")
    # What arrived while we listened (4 s, broadcast in batches of RELAY_BATCH_SECONDS),
    # plus whatever burst the relay had when we connected.
    assert decoded.duration > 4.0 - 2 * 0.5

    status = await (await client.get(f"/v1/streams/{stream_id}/status")).json()
    assert status["current_track"] == "Artist Two - Follow Up"


async def test_plain_http10_listener_gets_a_close_delimited_stream(node, fake_servers):
    source = await fake_servers(IcecastSource)
    client = await node()
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET /v1/streams/{stream_id}/live.mp3 HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200")
    assert b"chunked" not in head.lower() and b"icy-metaint" not in head.lower()
    body = await reader.readexactly(64 * 1024)
    writer.close()
    assert (await asyncio.to_thread(decode, body, format="mp3")).duration > 3.5


async def test_hls_plays_in_a_real_client_and_marks_the_outage(node, fake_servers):
    source = await fake_servers(IcecastSource, title="Live Set")
    client = await node(relay_grace_seconds=30)
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)
    playlist_url = str(client.make_url(f"/v1/streams/{stream_id}/live.m3u8"))

    async def segments(count):
        response = await client.get(f"/v1/streams/{stream_id}/live.m3u8")
        text = await response.text() if response.status == 200 else ""
        return text if text.count("#EXTINF") >= count else None

    text = await eventually(lambda: segments(3), timeout=20)
    assert "#EXT-X-TARGETDURATION:2" in text and "#EXT-X-PROGRAM-DATE-TIME" in text
    decoded = await asyncio.to_thread(decode, playlist_url, limit=3.0)
    assert decoded.duration >= 3.0 and decoded.codec.startswith("mp3")

    # A listener stays connected while the source drops and comes back.
    listener = await client.get(f"/v1/streams/{stream_id}/live.mp3")
    await read_for(listener, 0.5)
    await source.stop()
    await asyncio.sleep(1.0)
    await source.start()
    await connected(client, stream_id)
    after = await read_for(listener, 3.0)
    assert len(after) > 16_000  # audio flows again on the same connection
    listener.close()

    text = await eventually(lambda: _has_discontinuity(client, stream_id), timeout=20)
    assert "#EXT-X-DISCONTINUITY" in text


async def _has_discontinuity(client, stream_id):
    response = await client.get(f"/v1/streams/{stream_id}/live.m3u8")
    text = await response.text()
    return text if "#EXT-X-DISCONTINUITY" in text else None


async def test_segment_cache_headers_and_expiry(node, fake_servers):
    source = await fake_servers(IcecastSource)
    client = await node()
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)

    async def first_uri():
        response = await client.get(f"/v1/streams/{stream_id}/live.m3u8")
        if response.status != 200:
            return None
        assert response.headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
        assert response.headers["Cache-Control"] == "max-age=1"
        return next(
            (line for line in (await response.text()).splitlines() if line.startswith("hls/")),
            None,
        )

    # Relative to the playlist, so it holds behind an ingress, a CDN or a redirect.
    uri = await eventually(first_uri, timeout=20)
    segment = await client.get(f"/v1/streams/{stream_id}/{uri}")
    assert segment.status == 200 and segment.headers["Content-Type"] == "video/mp2t"
    assert "immutable" in segment.headers["Cache-Control"]
    missing = await client.get(f"/v1/streams/{stream_id}/hls/999999.ts")
    assert missing.status == 404 and (await missing.json())["code"] == 404


async def test_monetized_stream_needs_a_subscription(node, fake_servers):
    source = await fake_servers(IcecastSource)
    client = await node()
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj, monetization_enabled=True)
    await connected(client, stream_id, dj)
    anonymous = await client.get(f"/v1/streams/{stream_id}/live.mp3")
    assert anonymous.status == 403
    assert (await anonymous.json())["error"] == "Subscription required"

    listener, headers = await user_headers(client, "listener")
    assert (await client.get(f"/v1/streams/{stream_id}/live.m3u8", headers=headers)).status == 403
    plan = await (
        await client.post(
            "/v1/monetization/plans",
            headers=dj,
            json={
                "name": "Premium",
                "price_cents": 500,
                "currency": "USD",
                "billing_interval": "monthly",
            },
        )
    ).json()
    subscribed = await client.post(
        "/v1/monetization/subscriptions",
        headers=headers,
        json={"plan_id": plan["plan_id"], "stripe_payment_method_id": "test_pm"},
    )
    assert subscribed.status == 201
    response = await client.get(f"/v1/streams/{stream_id}/live.mp3", headers=bearer(listener))
    assert response.status == 200
    assert len(await read_for(response, 1.0)) > 10_000
    response.close()


async def test_deleting_the_stream_disconnects_listeners(node, fake_servers):
    source = await fake_servers(IcecastSource)
    client = await node()
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)
    listener = await client.get(f"/v1/streams/{stream_id}/live.mp3")
    await read_for(listener, 0.5)
    assert (await client.delete(f"/v1/streams/{stream_id}", headers=dj)).status == 204
    rest = await asyncio.wait_for(listener.content.read(), 5)  # the body ends
    assert rest is not None and listener.content.at_eof()
    assert (await client.get(f"/v1/streams/{stream_id}/live.mp3")).status == 404


async def test_ad_markers_are_signalled_in_the_live_playlist(node, fake_servers):
    source = await fake_servers(IcecastSource)
    client = await node()
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    markers = {
        "ad_markers": [{"position_seconds": 8, "duration_seconds": 2, "ad_type": "mid-roll"}]
    }
    response = await client.post(f"/v1/streams/{stream_id}/ads", json=markers, headers=dj)
    assert response.status == 200

    async def cued():
        text = await (await client.get(f"/v1/streams/{stream_id}/live.m3u8")).text()
        return text if "#EXT-X-CUE-IN" in text else None

    text = await eventually(cued, timeout=25)
    assert "#EXT-X-CUE-OUT:DURATION=2" in text
    assert 'CLASS="mid-roll"' in text and "#EXT-X-DATERANGE" in text


async def test_now_playing_title_travels_in_the_hls_segments(node, fake_servers):
    import av

    source = await fake_servers(IcecastSource, title="Opening Track")
    client = await node()
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)
    source.set_title("Second Track")

    async def titled_segment():
        text = await (await client.get(f"/v1/streams/{stream_id}/live.m3u8")).text()
        for line in text.splitlines():
            if line.startswith("#EXTINF") and line.endswith(",Second Track"):
                uri = text.splitlines()[text.splitlines().index(line) + 1]
                return f"/v1/streams/{stream_id}/{uri}"
        return None

    path = await eventually(titled_segment, timeout=20)
    payload = await (await client.get(path)).read()

    def id3_payloads() -> list[bytes]:
        import io

        with av.open(io.BytesIO(payload), format="mpegts") as container:
            data = [s for s in container.streams if s.type == "data"]
            return [bytes(p) for p in container.demux(data) if p.size]

    tags = await asyncio.to_thread(id3_payloads)
    assert any(b"Second Track" in tag for tag in tags)


async def test_a_listener_that_stops_reading_is_dropped_not_the_others(node, fake_servers):
    import socket

    source = await fake_servers(IcecastSource)
    client = await node(relay_listener_backlog_bytes=64 * 1024)
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)

    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny window, never read
    stuck.connect((client.host, client.port))
    stuck.sendall(f"GET /v1/streams/{stream_id}/live.mp3 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    healthy = await client.get(f"/v1/streams/{stream_id}/live.mp3")
    try:
        started = time.monotonic()

        async def dropped():
            await read_for(healthy, 0.5)
            text = await (await client.get("/metrics")).text()
            line = next(
                x
                for x in text.splitlines()
                if x.startswith(f'mediaserver_listeners_dropped_total{{stream="{stream_id}"}}')
            )
            return float(line.rsplit(" ", 1)[1]) >= 1

        await eventually(dropped, timeout=60, interval=0)
        # The healthy listener kept full rate all along: ~16 KB/s plus the burst.
        got = await read_for(healthy, 2.0)
        assert len(got) > 24_000
        assert time.monotonic() - started < 60
    finally:
        healthy.close()
        stuck.close()


async def test_a_listener_arriving_right_after_registration_is_held_then_served(node, fake_servers):
    source = await fake_servers(IcecastSource)
    client = await node()
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    # No wait for the relay to connect: it is connecting while this listener arrives.
    response = await client.get(f"/v1/streams/{stream_id}/live.mp3")
    assert response.status == 200
    assert len(await response.content.readexactly(8192)) == 8192
    response.close()


async def test_listening_time_is_not_request_latency(node, fake_servers):
    source = await fake_servers(IcecastSource)
    client = await node()
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)
    response = await client.get(f"/v1/streams/{stream_id}/live.mp3")
    await read_for(response, 1.5)
    response.close()
    endpoint = "/v1/streams/{stream_id}/live.mp3"

    async def scraped() -> dict[str, float] | None:
        text = await (await client.get("/metrics")).text()
        values = {}
        for line in text.splitlines():
            if f'endpoint="{endpoint}"' in line and "_bucket" not in line:
                name, value = line.rsplit(" ", 1)
                values[name.split("{")[0]] = float(value)
        return values if "mediaserver_listening_seconds_count" in values else None

    values = await eventually(scraped)
    # The session (1.5 s) is listening time; the request took milliseconds to answer.
    assert values["mediaserver_listening_seconds_count"] == 1
    assert values["mediaserver_listening_seconds_sum"] >= 1.4
    assert values["http_request_duration_seconds_count"] == 1
    assert values["http_request_duration_seconds_sum"] < 0.5
