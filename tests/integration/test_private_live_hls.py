"""Private and monetized live streams in players that cannot send headers: signed
`play_urls` from `GET /v1/streams/{id}`, opened by libavformat with no `Authorization`;
grants on the segments of a private playlist; the playlist's gzip variant; and the
discontinuity sequence after a source restart, end to end on loopback."""

from __future__ import annotations

import asyncio
import gzip
from datetime import timedelta

import pytest

from control.grants import SIGNED_OUT
from hls.playlist import parse_media_playlist
from tests.accounts import sign_out_everywhere, user_headers
from tests.audio import decode
from tests.live import ended, read_for
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

    segment = node.segment_path(stream_id, uris[-1])
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
        if "Content-Encoding" not in packed.headers:
            return None  # a playlist of one or two segments is too short to be worth it
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
    last_before = before.media_sequence + len(before.segments) - 1
    # The run's own first segment is the only one marked (its timeline starts afresh).
    assert [s.discontinuity for s in before.segments[1:]] == [False] * (len(before.segments) - 1)

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

    def reconnect(playlist) -> int | None:
        """The sequence number of the segment marked at the reconnect."""
        marked = [n for n, s in numbered(playlist) if s.discontinuity and n > last_before]
        return marked[0] if marked else None

    marked = await playlist_where(reconnect)
    at = reconnect(marked)
    numbers = discontinuity_numbers(marked)
    assert at - 1 in numbers and numbers[at] == numbers[at - 1] + 1
    # Once the marked segment has left the window, the sequence counts it (§6.2.2): every
    # segment keeps its discontinuity sequence number from one reload to the next.
    after = await playlist_where(lambda p: p.media_sequence > at)
    assert after.discontinuity_sequence == numbers[at]
    assert not any(s.discontinuity for s in after.segments)
    later = discontinuity_numbers(after)
    assert all(later[n] == numbers[n] for n in later.keys() & numbers.keys())
    # And a real client still plays the stream across it.
    played = await asyncio.to_thread(decode, f"{node.url}{url}", limit=2.0)
    assert played.duration >= 2.0


def numbered(playlist):
    return [(playlist.media_sequence + n, s) for n, s in enumerate(playlist.segments)]


def discontinuity_numbers(playlist) -> dict[int, int]:
    """Each segment's discontinuity sequence number (RFC 8216 §4.3.3.3): the playlist's
    EXT-X-DISCONTINUITY-SEQUENCE plus the discontinuity tags up to that segment."""
    count, numbers = playlist.discontinuity_sequence, {}
    for n, segment in numbered(playlist):
        count += segment.discontinuity
        numbers[n] = count
    return numbers


async def cancel_subscriptions(client, headers) -> None:
    """The listener cancels every subscription it holds (US-6.2)."""
    response = await client.get("/v1/monetization/subscriptions", headers=headers)
    assert response.status == 200, await response.text()
    for subscription in (await response.json())["subscriptions"]:
        url = f"/v1/monetization/subscriptions/{subscription['subscription_id']}"
        assert (await client.delete(url, headers=headers)).status == 200


async def refused(client, path: str) -> dict:
    """The error body once `path` is refused with 403 (grant checks are reused ~1 s)."""

    async def check():
        response = await client.get(path)
        body = await response.json() if response.status == 403 else None
        response.close()
        return body

    return await eventually(check, timeout=10)


async def test_a_play_link_stops_working_when_its_subscription_ends(live_node, fake_servers):
    source = await fake_servers(IcecastSource)
    node = await live_node(listener_recheck_seconds=0.5)
    client = node.client
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, dj, source, monetization_enabled=True)
    await playlist_text(node, stream_id, dj)
    subscriber = await subscriber_of(client, dj)
    other = await subscriber_of(client, dj)
    urls = (await (await client.get(f"/v1/streams/{stream_id}", headers=subscriber)).json())[
        "play_urls"
    ]
    # The grant names its user: `<user hex>.<valid from>.<expires>.<mac>`.
    me = await (await client.get("/v1/users/me", headers=subscriber)).json()
    assert urls["hls"].split("grant=")[1].split(".")[0] == me["user_id"].replace("-", "")
    hls, mp3 = node.path(urls["hls"]), node.path(urls["mp3"])
    assert (await client.get(hls)).status == 200
    by_link = await client.get(mp3)
    by_token = await client.get(f"/v1/streams/{stream_id}/live.mp3", headers=subscriber)
    staying = await client.get(f"/v1/streams/{stream_id}/live.mp3", headers=other)
    for listener in (by_link, by_token, staying):
        assert listener.status == 200 and len(await read_for(listener, 0.5)) > 1000

    # The subscription is cancelled: the links, still hours from expiry, stop working —
    # a link copied out of the player is not a pass to the paid stream — and the MP3
    # streams already playing end at the next re-check; another subscriber plays on.
    await cancel_subscriptions(client, subscriber)
    assert await ended(by_link) and await ended(by_token)
    assert len(await read_for(staying, 1.5)) > 10_000
    staying.close()
    for path in (hls, mp3):
        body = await refused(client, path)
        assert body["error"] == "Subscription required"


async def private_stream_listener(live_node, fake_servers):
    """A node relaying a private stream, and a listener (headers) who may play it."""
    source = await fake_servers(IcecastSource)
    node = await live_node()
    _, dj = await user_headers(node.client)
    stream_id = await register_stream(node.client, dj, source, visibility="private")
    await playlist_text(node, stream_id, dj)
    _, listener = await user_headers(node.client, "listener")
    return node, stream_id, listener


async def play_urls(node: LiveNode, stream_id: str, headers) -> dict[str, str]:
    detail = await node.client.get(f"/v1/streams/{stream_id}", headers=headers)
    return (await detail.json())["play_urls"]


async def test_a_play_link_of_a_deleted_account_is_refused(live_node, fake_servers):
    node, stream_id, listener = await private_stream_listener(live_node, fake_servers)
    hls = node.path((await play_urls(node, stream_id, listener))["hls"])
    assert (await node.client.get(hls)).status == 200
    assert (await node.client.delete("/v1/users/me", headers=listener)).status == 204
    body = await refused(node.client, hls)
    assert body["error"] == "The account this link was issued to no longer exists"


async def test_a_play_link_is_signed_out_with_its_account(live_node, fake_servers):
    """Changing the password (sign out everywhere) ends the play links handed to the old
    sessions, as it ends their tokens; links fetched after logging in again work."""
    node, stream_id, listener = await private_stream_listener(live_node, fake_servers)
    old = await play_urls(node, stream_id, listener)
    assert (await node.client.get(node.path(old["hls"]))).status == 200
    listener = await sign_out_everywhere(node.client, listener)
    for url in (old["hls"], old["mp3"]):
        assert (await refused(node.client, node.path(url)))["error"] == SIGNED_OUT
    new = await play_urls(node, stream_id, listener)
    assert (await node.client.get(node.path(new["hls"]))).status == 200
    assert (await node.client.get(node.path(old["hls"]))).status == 403


async def test_stricter_rules_refuse_old_segment_links_at_once(live_node, fake_servers):
    source = await fake_servers(IcecastSource)
    node = await live_node()
    client = node.client
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, dj, source, visibility="private")
    _, listener = await user_headers(client, "listener")  # no subscription
    text = await playlist_text(node, stream_id, listener)
    segment = node.segment_path(stream_id, parse_media_playlist(text).segments[-1].uri)
    assert (await client.get(segment)).status == 200

    change = await client.patch(
        f"/v1/streams/{stream_id}", json={"monetization_enabled": True}, headers=dj
    )
    assert change.status == 200
    # Not up to ten minutes later: the very next fetch.
    stale = await client.get(segment)
    assert stale.status == 403
    assert (await stale.json())["error"] == "This segment link has expired; reload the playlist"
    # The listener's player reloads the playlist and is told why.
    reload = await client.get(f"/v1/streams/{stream_id}/live.m3u8", headers=listener)
    assert (reload.status, (await reload.json())["error"]) == (403, "Subscription required")
    # Non-ASCII digits in a grant are refused like any forgery (not a server error).
    path = segment.split("?")[0]
    for grant in ("\u00b2.0123456789abcdef0123456789abcdef", "x"):
        assert (await client.get(path, params={"grant": grant})).status == 403
        hls = f"/v1/streams/{stream_id}/live.m3u8"
        assert (await client.get(hls, params={"grant": grant})).status == 403
