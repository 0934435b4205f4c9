"""AAC stations end to end on loopback: an Icecast (fake) serving ADTS AAC pulled by the
node, ffmpeg pushing AAC over `icecast://`, listeners decoding what they get with a real
decoder (continuous stream and live HLS); and the stream types the node refuses (Ogg) at
registration (422) and at push ingest (415), with the type named."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from relay.icy import IcyDemuxer, Metadata
from tests.accounts import user_headers
from tests.audio import decode, make_aac
from tests.integration.test_push_ingest import butt_head, push_node, register_push, source_request
from tests.live import connected, ended, eventually, read_for, register_stream
from tests.sources import IcecastSource, ShoutcastV2Source

__all__ = ["push_node"]  # the fixture, shared with test_push_ingest


async def test_pulled_aac_reaches_listeners_as_aac_with_titles(make_client, fake_servers):
    source = await fake_servers(IcecastSource, codec="aac", title="AAC Artist - One")
    client = await make_client(hls_segment_seconds=2)
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    status = await connected(client, stream_id)
    assert status["content_type"] == "audio/aac"
    assert status["bitrate"] == "128kbps"  # the source's icy-br

    detail = await (await client.get(f"/v1/streams/{stream_id}")).json()
    assert detail["play_urls"]["mp3"].endswith(f"/v1/streams/{stream_id}/live.mp3")
    response = await client.get(f"/v1/streams/{stream_id}/live.mp3", headers={"Icy-MetaData": "1"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "audio/aac"
    metaint = int(response.headers["icy-metaint"])
    first = await read_for(response, 1.5)
    source.set_title("AAC Artist - Two")
    rest = await read_for(response, 2.5)
    response.close()

    events = IcyDemuxer(metaint).feed(first + rest)
    titles = [e.title for e in events if isinstance(e, Metadata)]
    assert titles[0] == "AAC Artist - One" and titles[-1] == "AAC Artist - Two"
    audio = b"".join(e.data for e in events if not isinstance(e, Metadata))
    decoded = await asyncio.to_thread(decode, audio, format="aac")
    assert decoded.codec == "aac" and decoded.sample_rate == 44_100 and decoded.channels == 2
    assert decoded.duration > 4.0 - 2 * 0.5  # what arrived while we listened

    # Live HLS: ADTS AAC in MPEG-TS, the titles as timed ID3.
    playlist_url = str(client.make_url(f"/v1/streams/{stream_id}/live.m3u8"))

    async def segments():
        response = await client.get(f"/v1/streams/{stream_id}/live.m3u8")
        text = await response.text() if response.status == 200 else ""
        return text if text.count("#EXTINF") >= 3 else None

    text = await eventually(segments, timeout=20)
    assert "#EXT-X-TARGETDURATION:2" in text
    decoded = await asyncio.to_thread(decode, playlist_url, limit=3.0)
    assert decoded.codec == "aac" and decoded.duration >= 3.0
    uris = [line for line in text.splitlines() if line.startswith("hls/")]
    payloads = [await (await client.get(f"/v1/streams/{stream_id}/{u}")).read() for u in uris]
    assert b"\x0f\xe1\x00" in payloads[-1][188 : 2 * 188]  # PMT: stream_type 0x0F, ADTS
    assert any(b"TIT2" in p and b"AAC Artist - Two" in p for p in payloads)
    one = await asyncio.to_thread(decode, payloads[-1], format="mpegts")
    assert one.codec == "aac" and one.duration > 1.0


async def test_aac_outage_keeps_listeners_and_marks_hls(make_client, fake_servers):
    source = await fake_servers(IcecastSource, codec="aac")
    client = await make_client(hls_segment_seconds=2, relay_grace_seconds=30)
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    await connected(client, stream_id)
    listener = await client.get(f"/v1/streams/{stream_id}/live.mp3")
    before = await read_for(listener, 1.0)
    await source.stop()
    await asyncio.sleep(1.0)
    await source.start()
    await connected(client, stream_id)
    # Audio flows again in real time once the relay has reconnected: read for long enough
    # that a slow reconnect on a busy machine still leaves over a second of it.
    after = await read_for(listener, 5.0)
    listener.close()
    decoded = await asyncio.to_thread(decode, before + after, format="aac")
    assert decoded.codec == "aac" and decoded.duration > 2.5

    async def discontinuity():
        text = await (await client.get(f"/v1/streams/{stream_id}/live.m3u8")).text()
        return text if "#EXT-X-DISCONTINUITY" in text else None

    assert await eventually(discontinuity, timeout=20)


@pytest.mark.parametrize("kind", [IcecastSource, ShoutcastV2Source])
async def test_registering_an_ogg_source_is_refused_naming_the_type(
    make_client, fake_servers, kind
):
    source = await fake_servers(kind, codec="ogg")
    client = await make_client()
    _, dj = await user_headers(client)
    body = {
        "name": "Ogg Night",
        "shoutcast_url": source.url,
        "mount": source.mount,
        "stream_key": source.admin_password,
    }
    response = await client.post("/v1/streams", json=body, headers=dj)
    assert response.status == 422
    error = await response.json()
    assert error["code"] == 422 and "'application/ogg'" in error["error"]
    mine = await (await client.get("/v1/streams?mine=true", headers=dj)).json()
    assert mine["streams"] == []  # nothing registered and left failing


async def test_an_ogg_push_is_refused_before_any_audio(push_node):
    _, ingest, _ = await register_push(push_node)
    head = butt_head(ingest["mount"], ingest["password"], "audio/ogg")
    _, writer, answer = await source_request(push_node.ingest_port, head)
    writer.close()
    assert answer.startswith(b"HTTP/1.0 415") and b"'audio/ogg'" in answer


async def test_butt_pushing_aac_is_heard_as_aac(push_node):
    stream_id, ingest, _ = await register_push(push_node)
    head = butt_head(ingest["mount"], ingest["password"], "audio/aacp")
    _, writer, answer = await source_request(push_node.ingest_port, head)
    assert answer.startswith(b"HTTP/1.0 200")
    writer.write(make_aac(2.0))  # a burst, then the listener
    feeding = asyncio.create_task(_feed_aac(writer, 20))
    try:
        listener = await eventually(lambda: _listen(push_node.client, stream_id), timeout=10)
        assert listener.headers["Content-Type"] == "audio/aac"
        audio = await read_for(listener, 2.0)
        listener.close()
        decoded = await asyncio.to_thread(decode, audio, format="aac")
        assert decoded.codec == "aac" and decoded.duration > 1.0
    finally:
        feeding.cancel()
        writer.close()


async def _feed_aac(writer: asyncio.StreamWriter, seconds: float) -> None:
    clip = make_aac(seconds)
    step = len(clip) // int(seconds * 10)
    for start in range(0, len(clip), step):
        writer.write(clip[start : start + step])
        await writer.drain()
        await asyncio.sleep(0.1)


async def _listen(client, stream_id):
    response = await client.get(f"/v1/streams/{stream_id}/live.mp3")
    if response.status != 200:
        response.close()
        return None
    return response


@pytest.mark.skipif(
    shutil.which("ffmpeg") is None and not os.environ.get("CI"),
    reason="ffmpeg is not installed (apt-get install ffmpeg; .ci/run installs it)",
)
async def test_ffmpeg_pushes_aac_over_icecast(push_node):
    stream_id, ingest, _ = await register_push(push_node)
    url = f"icecast://source:{ingest['password']}@127.0.0.1:{ingest['port']}{ingest['mount']}"
    encoder = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "sine=frequency=550:sample_rate=44100:duration=20",
        "-c:a", "aac", "-b:a", "96k", "-f", "adts", "-content_type", "audio/aac", url,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        listener = await eventually(lambda: _listen(push_node.client, stream_id), timeout=15)
        assert listener.headers["Content-Type"] == "audio/aac"
        audio = await read_for(listener, 3.0)
        listener.close()
        decoded = await asyncio.to_thread(decode, audio, format="aac")
        assert decoded.codec == "aac" and decoded.duration > 1.5
        status = await (await push_node.client.get(f"/v1/streams/{stream_id}/status")).json()
        assert status["content_type"] == "audio/aac"
    finally:
        encoder.kill()
        _, err = await encoder.communicate()
    assert b"Unauthorized" not in err


async def test_a_dj_switching_from_mp3_to_aac(make_client, fake_servers):
    source = await fake_servers(IcecastSource)
    client = await make_client(hls_segment_seconds=2, relay_grace_seconds=30)
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, source, dj)
    assert (await connected(client, stream_id))["content_type"] == "audio/mpeg"
    mp3_listener = await client.get(f"/v1/streams/{stream_id}/live.mp3")
    assert mp3_listener.headers["Content-Type"] == "audio/mpeg"
    await read_for(mp3_listener, 0.5)

    await source.stop()
    source.use_codec("aac")
    await source.start()

    # The MP3 listener's response ends (its Content-Type named MP3): its player reconnects.
    assert await ended(mp3_listener, timeout=15)

    async def aac_listener():
        response = await _listen(client, stream_id)
        if response is not None and response.headers["Content-Type"] != "audio/aac":
            response.close()
            return None
        return response

    listener = await eventually(aac_listener, timeout=15)
    audio = await read_for(listener, 2.0)
    listener.close()
    decoded = await asyncio.to_thread(decode, audio, format="aac")
    assert decoded.codec == "aac" and decoded.duration > 1.0
    status = await (await client.get(f"/v1/streams/{stream_id}/status")).json()
    assert status["content_type"] == "audio/aac"


class _UnnamedTypeIcecast(IcecastSource):
    """An Icecast whose admin stats leave the mount's type out: the node listens to the
    stream to learn it."""

    def _source_stats(self) -> dict[str, object]:
        stats = super()._source_stats()
        del stats["server_type"]
        return stats


@pytest.mark.parametrize(
    ("codec", "declared", "status", "named"),
    [
        ("ogg", None, 422, "'application/ogg'"),
        ("ogg", "audio/mpeg", 422, "'application/ogg'"),  # the first bytes tell the truth
        ("aac", None, 201, None),
    ],
)
async def test_registration_listens_when_the_admin_does_not_name_the_type(
    make_client, fake_servers, codec, declared, status, named
):
    source = await fake_servers(_UnnamedTypeIcecast, codec=codec)
    if declared is not None:
        source.content_type = declared
    client = await make_client()
    _, dj = await user_headers(client)
    body = {
        "name": "Mystery Night",
        "shoutcast_url": source.url,
        "mount": source.mount,
        "stream_key": source.admin_password,
    }
    response = await client.post("/v1/streams", json=body, headers=dj)
    assert response.status == status, await response.text()
    if named is not None:
        assert named in (await response.json())["error"]
    else:  # relayed: and waited for, so the test does not end while the relay connects
        stream_id = (await response.json())["stream_id"]
        assert (await connected(client, stream_id))["content_type"] == "audio/aac"
