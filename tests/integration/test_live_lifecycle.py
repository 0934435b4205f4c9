"""What happens to a live stream's listeners over its life, with a real relay on loopback:
access tightened while they listen, long source outages, a node restart (and the segment
numbers of its new run), and the figures the relay records (its 30 s samples, the
admin-stats title)."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest

from control.streams.media_routes import RELAY_DOWN
from control.streams.service import STREAMS as STREAMS_SERVICE
from hls.playlist import MediaPlaylist, parse_media_playlist
from relay.icy import IcyDemuxer, Metadata
from tests.accounts import user_headers
from tests.live import connected, ended, eventually, read_for, register_stream
from tests.sources import IcecastSource


@pytest.fixture
async def node(make_client):
    async def make(**overrides):
        return await make_client(hls_segment_seconds=2, **overrides)

    return make


@pytest.mark.parametrize(
    ("change", "refused"),
    [({"visibility": "private"}, 401), ({"monetization_enabled": True}, 403)],
)
async def test_stricter_access_disconnects_current_listeners(node, fake_servers, change, refused):
    source = await fake_servers(IcecastSource)
    client = await node()
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)
    mp3 = f"/v1/streams/{stream_id}/live.mp3"
    listener = await client.get(mp3)
    assert len(await read_for(listener, 1.0)) > 10_000

    # A change that takes nobody's access away leaves the listener playing.
    renamed = await client.patch(f"/v1/streams/{stream_id}", json={"name": "Renamed"}, headers=dj)
    assert renamed.status == 200
    assert len(await read_for(listener, 1.0)) > 10_000
    again = await client.get(mp3)
    assert again.headers["icy-name"] == "Renamed"  # the running relay picked the name up
    again.close()

    response = await client.patch(f"/v1/streams/{stream_id}", json=change, headers=dj)
    assert response.status == 200
    assert await ended(listener)  # the anonymous player is cut off ...
    back = await client.get(mp3)  # ... and its reconnection meets the paywall
    assert back.status == refused
    assert (await client.get(f"/v1/streams/{stream_id}/live.m3u8")).status == refused
    owner = await client.get(mp3, headers=dj)  # whoever may still listen gets back in
    assert owner.status == 200 and len(await read_for(owner, 1.0)) > 10_000
    owner.close()


async def test_listeners_are_released_and_refused_once_the_grace_period_is_over(node, fake_servers):
    source = await fake_servers(IcecastSource)
    client = await node(relay_grace_seconds=1.0)
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)
    mp3, m3u8 = f"/v1/streams/{stream_id}/live.mp3", f"/v1/streams/{stream_id}/live.m3u8"

    async def playlist_served():
        return (await client.get(m3u8)).status == 200

    await eventually(playlist_served, timeout=20)
    listener = await client.get(mp3)
    await read_for(listener, 0.5)

    await source.stop()
    assert await ended(listener, timeout=20)  # released once the outage outlasts 1 s
    for path in (mp3, m3u8):  # no stale burst, no frozen playlist: the relay is down
        refused = await client.get(path)
        assert refused.status == 404 and refused.headers["Retry-After"] == "10"
        assert await refused.json() == {"error": RELAY_DOWN, "code": 404}

    await source.start()  # the DJ is back: both are served again

    async def listening():
        response = await client.get(mp3)
        if response.status != 200:
            return None
        data = await read_for(response, 1.0)
        response.close()
        return len(data) > 10_000

    assert await eventually(listening, timeout=30)
    assert await eventually(playlist_served, timeout=20)


async def test_a_stream_that_never_sent_audio_is_relay_down(node, fake_servers):
    source = await fake_servers(IcecastSource)
    client = await node()
    _, dj = await user_headers(client)
    # The admin interface accepts the key, but nobody broadcasts on this mount.
    stream_id = await register_stream(client, source, dj, mount="/nobody-here")
    for path in ("live.mp3", "live.m3u8"):
        response = await client.get(f"/v1/streams/{stream_id}/{path}")
        assert response.status == 404
        assert await response.json() == {"error": RELAY_DOWN, "code": 404}


async def test_a_restarted_node_relays_its_enabled_streams_again(node, fake_servers):
    source = await fake_servers(IcecastSource)
    first = await node()
    _, dj = await user_headers(first)
    stream_id = await register_stream(first, source, dj)
    await connected(first, stream_id)
    before = await live_playlist(first, stream_id)
    await first.close()  # the node stops (its relay with it)
    assert await eventually(lambda: _no_listener(source))

    second = await node()  # same database: it finds the enabled stream and relays it
    await connected(second, stream_id)
    response = await second.get(f"/v1/streams/{stream_id}/live.mp3")
    assert response.status == 200 and len(await read_for(response, 1.0)) > 10_000
    response.close()

    # The new run's segments have new numbers — a CDN or browser caches segment URLs as
    # immutable, so the old ones must never name other audio — and its playlist's
    # sequence numbers move on from the old run's (RFC 8216 §6.2.1).
    after = await live_playlist(second, stream_id)
    old_numbers, new_numbers = segment_numbers(before), segment_numbers(after)
    assert min(new_numbers) > max(old_numbers)
    assert after.media_sequence > before.media_sequence
    assert after.discontinuity_sequence >= before.discontinuity_sequence
    assert after.segments[0].discontinuity  # players that kept polling reset their timeline
    old_uri = urlsplit(before.segments[-1].uri).path
    assert (await second.get(old_uri)).status == 404  # gone, not someone else's audio


async def live_playlist(client, stream_id: str) -> MediaPlaylist:
    """The stream's live playlist once it lists two segments."""

    async def ready() -> MediaPlaylist | None:
        response = await client.get(f"/v1/streams/{stream_id}/live.m3u8")
        if response.status != 200:
            return None
        playlist = parse_media_playlist(await response.text())
        return playlist if len(playlist.segments) >= 2 else None

    return await eventually(ready, timeout=30)


def segment_numbers(playlist: MediaPlaylist) -> list[int]:
    numbers = [
        int(urlsplit(s.uri).path.rsplit("/", 1)[1].removesuffix(".ts")) for s in playlist.segments
    ]
    assert numbers == list(range(playlist.media_sequence, playlist.media_sequence + len(numbers)))
    return numbers


async def _no_listener(source) -> bool:
    return source.listeners == 0


async def analytics_total(client, stream_id, headers) -> int:
    response = await client.get(f"/v1/analytics/streams/{stream_id}", headers=headers)
    assert response.status == 200, await response.text()
    return int((await response.json())["total_listens"])


async def test_the_relays_own_samples_reach_the_analytics(node, fake_servers):
    source = await fake_servers(IcecastSource)
    client = await node(relay_heartbeat_seconds=0.5)
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)
    listener = await client.get(f"/v1/streams/{stream_id}/live.mp3")

    async def counted():
        await read_for(listener, 0.2)
        return await analytics_total(client, stream_id, dj) >= 3  # three samples of one

    await eventually(counted, timeout=20)
    report = await (await client.get(f"/v1/analytics/streams/{stream_id}", headers=dj)).json()
    assert report["daily_listeners"][-1]["listeners"] >= 3
    listener.close()


async def test_settings_changes_refresh_the_status_without_counting_listeners_again(
    node, fake_servers
):
    source = await fake_servers(IcecastSource)
    client = await node(relay_heartbeat_seconds=300)  # no periodic sample during the test
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)
    listener = await client.get(f"/v1/streams/{stream_id}/live.mp3")
    await read_for(listener, 0.3)

    async def beat_after(previous):
        async def check():
            status = await (await client.get(f"/v1/streams/{stream_id}/status")).json()
            beat = status["last_heartbeat"]
            return status if beat is not None and beat != previous else None

        return await eventually(check)

    last = (await connected(client, stream_id))["last_heartbeat"]
    url = f"/v1/streams/{stream_id}"
    ads = {"ad_markers": [{"position_seconds": 60, "duration_seconds": 30, "ad_type": "mid-roll"}]}
    for method, path, body in (
        ("PATCH", url, {"genre": "Techno"}),
        ("POST", f"{url}/ads", ads),
        ("PATCH", url, {"description": "Live"}),
    ):
        assert (await client.request(method, path, json=body, headers=dj)).status == 200
        status = await beat_after(last)  # the change made the relay beat at once ...
        last = status["last_heartbeat"]
        assert status["listeners"] == 1
    assert await analytics_total(client, stream_id, dj) == 0  # ... but recorded no sample
    listener.close()


async def test_the_admin_stats_title_stands_in_when_the_source_sends_none(node, fake_servers):
    source = await fake_servers(IcecastSource, title="Admin - First", metaint=0)  # no ICY
    client = await node(relay_heartbeat_seconds=0.5)
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)

    async def track(expected):
        async def check():
            status = await (await client.get(f"/v1/streams/{stream_id}/status")).json()
            return status["current_track"] == expected

        return await eventually(check)

    await track("Admin - First")
    listener = await client.get(f"/v1/streams/{stream_id}/live.mp3", headers={"Icy-MetaData": "1"})
    source.set_title("Admin - Second")
    await track("Admin - Second")
    data = await read_for(listener, 2.5)  # ICY listeners get the title in-band too
    listener.close()
    metaint = int(listener.headers["icy-metaint"])
    titles = [e.title for e in IcyDemuxer(metaint).feed(data) if isinstance(e, Metadata)]
    assert "Admin - Second" in titles

    # The service never decrypts a key for a stream that is gone.
    await client.delete(f"/v1/streams/{stream_id}", headers=dj)
    assert await client.app[STREAMS_SERVICE].admin_stats(uuid.UUID(stream_id)) is None
