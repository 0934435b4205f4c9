"""Against a real Icecast 2 (Debian's `icecast2`; `.ci/run` installs it): the server on
loopback fed by a real source client (HTTP PUT, then the metadata update a DJ's encoder
sends), registered through `POST /v1/streams`, listened to by libavformat both as
`live.mp3` and as an HLS client of `live.m3u8`, with the title the source client sent as
the stream's `current_track`. Skipped only when the icecast2 binary is missing."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import quote

import aiohttp
import pytest

from hls.playlist import parse_media_playlist
from tests.accounts import user_headers
from tests.audio import decode, make_mp3
from tests.bench.icecast import MOUNT, Icecast, IcecastFeeder, icecast_binary, run_icecast
from tests.livefeed import Mp3Clip
from tests.livenode import eventually

BINARY = icecast_binary()
pytestmark = pytest.mark.skipif(BINARY is None, reason="Debian's icecast2 is not installed")
TITLE = "Real Icecast DJ - Live From Loopback"
SEGMENT_SECONDS = 2  # HLS target duration: short, so the playlist fills in seconds


async def update_title(icecast: Icecast, title: str) -> None:
    """What a source client (butt, Mixxx, liquidsoap) does on a track change: Icecast's
    `/admin/metadata?mode=updinfo` with the mount's credentials."""
    url = (
        f"http://127.0.0.1:{icecast.port}/admin/metadata"
        f"?mount={quote(MOUNT)}&mode=updinfo&song={quote(title)}"
    )
    credentials = base64.b64encode(f"admin:{icecast.password}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, timeout=timeout) as response,
    ):
        body = await response.text()
    assert response.status == 200 and "Metadata update successful" in body, body


@pytest.fixture
async def icecast():
    """Icecast 2 on a free loopback port (as root it binds, then runs as `nobody`: the
    config gets <changeowner>, the log directory is handed over — see tests/bench/icecast)."""
    assert BINARY is not None
    async with run_icecast(BINARY, clients=20) as server:
        yield server


async def test_a_real_icecast_source_is_relayed_with_its_title(make_client, icecast):
    clip = Mp3Clip.parse(make_mp3(2.0))
    client = await make_client(hls_segment_seconds=SEGMENT_SECONDS)
    _, dj = await user_headers(client)
    body = {
        "name": "Real Icecast",
        "shoutcast_url": f"http://127.0.0.1:{icecast.port}",
        "mount": MOUNT,
        "stream_key": icecast.password,
        "genre": "House",
    }
    async with IcecastFeeder(clip, icecast.port, icecast.password):
        await update_title(icecast, TITLE)

        wrong = await client.post("/v1/streams", json={**body, "stream_key": "nope"}, headers=dj)
        assert wrong.status == 422
        assert (await wrong.json())["code"] == 422
        created = await client.post("/v1/streams", json=body, headers=dj)
        assert created.status == 201, await created.text()
        stream_id = (await created.json())["stream_id"]
        detail = await (await client.get(f"/v1/streams/{stream_id}")).json()
        assert detail["server_kind"] == "icecast2"

        async def titled():
            response = await client.get(f"/v1/streams/{stream_id}/status")
            status = await response.json() if response.status == 200 else {}
            return status if status.get("current_track") == TITLE else None

        status = await eventually(titled, timeout=30)
        assert status["relay_connected"] is True and status["bitrate"] == "128kbps"

        url = str(client.make_url(f"/v1/streams/{stream_id}/live.mp3"))
        heard = await asyncio.to_thread(decode, url, limit=3.0)
        assert heard.codec.startswith("mp3") and heard.sample_rate == 44_100
        assert heard.duration >= 3.0 and heard.channels == 2

        # And as HLS: libavformat's HLS demuxer loads the playlist, fetches segments over
        # HTTP and decodes them. More than two target durations of audio means at least
        # three segments played (none is longer than the target).
        hls = f"/v1/streams/{stream_id}/live.m3u8"

        async def three_segments():
            response = await client.get(hls)
            text = await response.text() if response.status == 200 else ""
            return text if text.count("#EXTINF") >= 3 else None

        playlist = parse_media_playlist(await eventually(three_segments, timeout=30))
        assert all(s.duration <= SEGMENT_SECONDS for s in playlist.segments)
        limit = 2 * SEGMENT_SECONDS + 0.5
        played = await asyncio.to_thread(decode, str(client.make_url(hls)), limit=limit)
        assert played.codec.startswith("mp3") and played.sample_rate == 44_100
        assert played.duration >= limit - 0.1 and played.channels == 2
