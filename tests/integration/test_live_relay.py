"""Live streams end to end on loopback: a real (fake) SHOUTcast/Icecast source, our node
relaying it, and real decoders listening to `live.mp3` and `live.m3u8`."""

from __future__ import annotations

import asyncio
import time

import pytest

from mediaserver.app import build_app
from relay.icy import IcyDemuxer, Metadata
from tests.accounts import bearer, user_headers
from tests.audio import decode
from tests.sources import IcecastSource, ShoutcastV1Source, ShoutcastV2Source


async def eventually(check, timeout: float = 15.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


@pytest.fixture
async def node(aiohttp_client, make_settings, test_secrets):
    """A node with short HLS segments and grace period, on a known port."""

    async def make(**overrides):
        from tests.sources import free_port

        port = free_port()
        settings = make_settings(
            hls_segment_seconds=2, public_url=f"http://127.0.0.1:{port}", **overrides
        )
        return await aiohttp_client(build_app(settings, test_secrets), server_kwargs={"port": port})

    return make


async def register_stream(client, source, headers, **fields):
    body = {
        "name": "Friday Night",
        "shoutcast_url": source.url,
        "mount": source.mount,
        "stream_key": source.admin_password,
        "genre": "House",
        **fields,
    }
    response = await client.post("/v1/streams", json=body, headers=headers)
    assert response.status == 201, await response.text()
    return (await response.json())["stream_id"]


async def read_for(response, seconds: float) -> bytes:
    data = bytearray()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = await asyncio.wait_for(
                response.content.read(65536), deadline - time.monotonic()
            )
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def connected(client, stream_id, headers=None):
    async def check():
        response = await client.get(f"/v1/streams/{stream_id}/status", headers=headers)
        body = await response.json()
        return body if body.get("relay_connected") else None

    return await eventually(check)


@pytest.mark.parametrize("kind", [IcecastSource, ShoutcastV1Source, ShoutcastV2Source])
async def test_listeners_hear_the_source_as_mp3_with_titles(node, fake_servers, kind):
    source = await fake_servers(kind, title="Artist One - Opening")
    client = await node()
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    status = await connected(client, stream_id)
    assert status["bitrate"] == "128kbps"

    response = await client.get(f"/v1/streams/{stream_id}/live.mp3", headers={"Icy-MetaData": "1"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert response.headers["icy-name"] == "Friday Night"
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
    # Burst-on-connect (~4 s of audio) plus what arrived while we listened.
    assert decoded.duration > 4.0

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
            (line for line in (await response.text()).splitlines() if line.startswith("http")), None
        )

    uri = await eventually(first_uri, timeout=20)
    assert uri.startswith(f"http://127.0.0.1:{client.port}/v1/streams/{stream_id}/hls/")
    segment = await client.get(uri.split(str(client.port), 1)[1])
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
    assert await anonymous.json() == {"error": "Subscription required", "code": 403}

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
