"""Private and monetized live streams in players that cannot send headers: signed
`play_urls` from `GET /v1/streams/{id}`, opened by libavformat with no `Authorization`;
grants on the segments of a private playlist; the playlist's gzip variant; and the
discontinuity sequence after a source restart, end to end on loopback."""

from __future__ import annotations

import asyncio
import gzip
from datetime import timedelta

import pytest

from hls.playlist import parse_media_playlist
from tests.accounts import user_headers
from tests.audio import decode
from tests.livenode import LiveNode, eventually, start_live_node
from tests.sources import IcecastSource
from tests.streams import register_stream, subscriber_of

PLAY_URL_TTL = timedelta(hours=6)


@pytest.fixture
async def live_node(aiohttp_client, make_client, make_settings, test_secrets):
    async def start(**overrides) -> LiveNode:
        return await start_live_node(aiohttp_client, make_settings, test_secrets, **overrides)

    return start


async def playlist_text(node: LiveNode, stream_id: str, headers=None, query: str = "") -> str:
    """The live playlist once it lists three segments."""

    async def ready():
        url = f"/v1/streams/{stream_id}/live.m3u8{query}"
        response = await node.client.get(url, headers=headers)
        text = await response.text() if response.status == 200 else ""
        return text if text.count("#EXTINF") >= 3 else None

    return await eventually(ready, timeout=30)


def tampered(grant: str) -> str:
    return grant[:-1] + ("0" if grant[-1] != "0" else "1")


async def test_a_subscriber_plays_signed_urls_in_players_that_send_no_headers(
    live_node, fake_servers
):
    source = await fake_servers(IcecastSource, title="Members Only")
    node = await live_node()
    client = node.client
    _, dj = await user_headers(client)
    stream_id = await register_stream(
        client, dj, source, visibility="private", monetization_enabled=True
    )
    await playlist_text(node, stream_id, dj)
    subscriber = await subscriber_of(client, dj)

    detail = await client.get(f"/v1/streams/{stream_id}", headers=subscriber)
    assert detail.status == 200
    urls = (await detail.json())["play_urls"]
    base = f"{node.url}/v1/streams/{stream_id}"
    assert urls["mp3"].startswith(f"{base}/live.mp3?grant=")
    assert urls["hls"].startswith(f"{base}/live.m3u8?grant=")
    expires = node.clock.return_value + PLAY_URL_TTL
    assert urls["expires_at"] == expires.replace(microsecond=0).isoformat().replace("+00:00", "Z")

    # libavformat, as VLC or ffplay use it: no Authorization header anywhere.
    hls = await asyncio.to_thread(decode, urls["hls"], limit=3.0)
    assert hls.codec.startswith("mp3") and hls.duration >= 3.0
    mp3 = await asyncio.to_thread(decode, urls["mp3"], limit=2.0)
    assert mp3.codec.startswith("mp3") and mp3.duration >= 2.0

    # Without the grant, or with a forged one, the same URLs are refused.
    assert (await client.get(node.path(urls["hls"].split("?")[0]))).status == 401
    grant = urls["hls"].split("grant=")[1]
    for kind in ("mp3", "m3u8"):
        forged = await client.get(f"/v1/streams/{stream_id}/live.{kind}?grant={tampered(grant)}")
        assert forged.status == 403
        assert (await forged.json())["code"] == 403

    # Past `expires_at` the links stop working; the API hands out fresh ones.
    node.advance(hours=6, seconds=1)
    for url in (urls["hls"], urls["mp3"]):
        expired = await client.get(node.path(url))
        assert expired.status == 403
        body = await expired.json()
        assert body == {"error": body["error"], "code": 403} and "expired" in body["error"]
    fresh = (await (await client.get(f"/v1/streams/{stream_id}", headers=subscriber)).json())[
        "play_urls"
    ]
    assert fresh["hls"] != urls["hls"]
    assert (await client.get(node.path(fresh["hls"]))).status == 200


async def test_play_urls_follow_the_media_access_rules(live_node, fake_servers):
    source = await fake_servers(IcecastSource)
    node = await live_node()
    client = node.client
    _, dj = await user_headers(client)
    paid = await register_stream(client, dj, source, monetization_enabled=True)
    free = await register_stream(client, dj, source, name="Free Radio")
    _, listener = await user_headers(client, "listener")

    # A public monetized stream's page is readable, but without a subscription no links.
    body = await (await client.get(f"/v1/streams/{paid}", headers=listener)).json()
    assert body["play_urls"] is None
    # Open streams get plain links that never expire.
    body = await (await client.get(f"/v1/streams/{free}")).json()
    base = f"{node.url}/v1/streams/{free}"
    assert body["play_urls"] == {
        "mp3": f"{base}/live.mp3",
        "hls": f"{base}/live.m3u8",
        "expires_at": None,
    }
    # The owner may listen to its own monetized stream.
    owner = await (await client.get(f"/v1/streams/{paid}", headers=dj)).json()
    assert "?grant=" in owner["play_urls"]["mp3"]

    # Making the stream stricter invalidates the links issued before.
    private = await register_stream(client, dj, source, visibility="private", name="Crew")
    links = (await (await client.get(f"/v1/streams/{private}", headers=dj)).json())["play_urls"]
    await playlist_text(node, private, query="?" + links["hls"].split("?")[1])
    change = await client.patch(
        f"/v1/streams/{private}", json={"monetization_enabled": True}, headers=dj
    )
    assert change.status == 200
    assert (await client.get(node.path(links["hls"]))).status == 403
    # Nor does a play link open another stream.
    other = node.path(links["hls"]).replace(private, free)
    assert (await client.get(other)).status == 403


async def test_a_private_playlist_grants_its_segments_and_only_them(live_node, fake_servers):
    source = await fake_servers(IcecastSource)
    node = await live_node()
    client = node.client
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, dj, source, visibility="private")
    _, listener = await user_headers(client, "listener")  # has `streams:read`

    text = await playlist_text(node, stream_id, listener)
    response = await client.get(f"/v1/streams/{stream_id}/live.m3u8", headers=listener)
    assert response.status == 200
    assert response.headers["Cache-Control"].startswith("private, ")
    uris = [s.uri for s in parse_media_playlist(text).segments]
    assert uris and all("?grant=" in uri for uri in uris)

    segment = node.path(uris[-1])
    granted = await client.get(segment)
    assert granted.status == 200 and granted.headers["Content-Type"] == "video/mp2t"
    assert (await granted.read())[0] == 0x47  # an MPEG-TS sync byte
    path, grant = segment.split("?grant=")
    bare = await client.get(path)
    assert bare.status == 401 and (await bare.json())["code"] == 401
    forged = await client.get(f"{path}?grant={tampered(grant)}")
    assert forged.status == 403 and (await forged.json())["code"] == 403
    # A segment grant does not open the playlist (reloading it must not renew access).
    assert (await client.get(f"/v1/streams/{stream_id}/live.m3u8?grant={grant}")).status == 403
    # Anonymous players get the playlist only through a play link.
    assert (await client.get(f"/v1/streams/{stream_id}/live.m3u8")).status == 401


async def test_the_playlist_is_gzipped_only_for_clients_that_accept_it(live_node, fake_servers):
    source = await fake_servers(IcecastSource)
    node = await live_node()
    client = node.client
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, dj, source)
    await playlist_text(node, stream_id)
    url = f"/v1/streams/{stream_id}/live.m3u8"

    async def both() -> tuple[bytes, bytes] | None:
        packed = await client.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
        plain = await client.get(url, headers={"Accept-Encoding": "identity"})
        for response in (packed, plain):
            assert response.status == 200
            assert "Accept-Encoding" in response.headers.getall("Vary")
        assert packed.headers["Content-Encoding"] == "gzip"
        assert "Content-Encoding" not in plain.headers
        pair = (gzip.decompress(await packed.read()), await plain.read())
        return pair if pair[0] == pair[1] else None  # unless a segment came out in between

    _, text = await eventually(both)
    assert text.startswith(b"#EXTM3U\n") and b"#EXTINF" in text


async def test_a_source_restart_moves_the_discontinuity_sequence_on(live_node, fake_servers):
    source = await fake_servers(IcecastSource)
    node = await live_node(hls_segment_seconds=1)
    client = node.client
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, dj, source)
    before = parse_media_playlist(await playlist_text(node, stream_id))
    assert before.discontinuity_sequence == 0
    assert not any(s.discontinuity for s in before.segments)

    await source.stop()
    await source.start()
    url = f"/v1/streams/{stream_id}/live.m3u8"

    async def playlist_where(condition):
        async def check():
            response = await client.get(url)
            if response.status != 200:
                return None
            playlist = parse_media_playlist(await response.text())
            return playlist if condition(playlist) else None

        return await eventually(check, timeout=40)

    marked = await playlist_where(lambda p: any(s.discontinuity for s in p.segments))
    assert marked.discontinuity_sequence == 0
    # Once the marked segment has left the window, the sequence counts it (§6.2.2).
    after = await playlist_where(lambda p: p.media_sequence > marked.media_sequence + 6)
    assert after.discontinuity_sequence == 1
    assert not any(s.discontinuity for s in after.segments)
    # And a real client still plays the stream across it.
    played = await asyncio.to_thread(decode, f"{node.url}{url}", limit=2.0)
    assert played.duration >= 2.0
