"""Push streams: a DJ's encoder sends audio to the node with the Icecast source protocol —
a raw `SOURCE` request as BUTT sends it, and ffmpeg's `icecast://` output (`PUT`) — and
listeners hear it (decoded with a real decoder), titles included."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import time

import pytest

from tests.accounts import user_headers
from tests.audio import decode, make_mp3
from tests.live import eventually, read_for
from tests.livefeed import Mp3Clip
from tests.livenode import start_live_node
from tests.loopback import free_port

CLIP = Mp3Clip.parse(make_mp3(2.0))


@pytest.fixture
async def push_node(aiohttp_client, make_client, make_settings, test_secrets):
    port = free_port()
    node = await start_live_node(aiohttp_client, make_settings, test_secrets, ingest_port=port)
    node.ingest_port = port
    return node


async def register_push(node, **fields) -> tuple[str, dict, dict]:
    _, dj = await user_headers(node.client)
    body = {"name": "Live from BUTT", "source_type": "push", **fields}
    response = await node.client.post("/v1/streams", json=body, headers=dj)
    assert response.status == 201, await response.text()
    created = await response.json()
    return created["stream_id"], created["ingest"], dj


def basic(password: str, user: str = "source") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def source_request(
    port: int, head: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    if not answer.startswith((b"HTTP/1.0 200", b"HTTP/1.1 100")):
        answer += await asyncio.wait_for(reader.read(), 5)  # a refusal's text, then close
    return reader, writer, answer


def butt_head(mount: str, password: str, content_type: str = "audio/mpeg") -> str:
    """What BUTT sends (libshout's legacy protocol): SOURCE over HTTP/1.0, ice-* headers."""
    return (
        f"SOURCE {mount} HTTP/1.0\r\nAuthorization: {basic(password)}\r\n"
        f"User-Agent: butt 0.1.40\r\nContent-Type: {content_type}\r\n"
        "ice-name: Friday Night\r\nice-genre: House\r\nice-public: 1\r\n"
        "ice-audio-info: bitrate=128;channels=2;samplerate=44100\r\n\r\n"
    )


async def feed(writer: asyncio.StreamWriter, seconds: float) -> None:
    """MP3 frames in real time, ~100 ms at a time, as an encoder sends them."""
    index, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        writer.write(CLIP.chunk(index))
        await writer.drain()
        index += CLIP.frames_per_chunk
        due = started + index * CLIP.frame_duration
        await asyncio.sleep(max(0.0, due - time.monotonic()))


async def test_butt_pushes_and_listeners_hear_it_with_titles(push_node):
    stream_id, ingest, _ = await register_push(push_node)
    assert ingest["port"] == push_node.ingest_port and ingest["username"] == "source"
    assert ingest["url"] == f"icecast://127.0.0.1:{push_node.ingest_port}{ingest['mount']}"
    _, writer, answer = await source_request(
        push_node.ingest_port, butt_head(ingest["mount"], ingest["password"])
    )
    assert answer.startswith(b"HTTP/1.0 200 OK")
    feeding = asyncio.create_task(feed(writer, 30))
    try:
        client = push_node.client
        listener = await client.get(f"/v1/streams/{stream_id}/live.mp3")
        assert listener.status == 200 and listener.headers["Content-Type"] == "audio/mpeg"
        audio = await read_for(listener, 3.0)
        listener.close()
        decoded = decode(audio)
        assert decoded.duration > 1.5 and decoded.sample_rate == 44_100

        # The title BUTT sends beside the audio reaches the status.
        reader, meta_writer = await asyncio.open_connection("127.0.0.1", push_node.ingest_port)
        meta_writer.write(
            f"GET /admin/metadata?mount={ingest['mount']}&mode=updinfo&song=DJ%20-%20Track%202 "
            f"HTTP/1.0\r\nAuthorization: {basic(ingest['password'])}\r\n\r\n".encode()
        )
        reply = await asyncio.wait_for(reader.read(), 5)
        meta_writer.close()
        assert reply.startswith(b"HTTP/1.0 200 OK") and b"Metadata update successful" in reply

        async def titled():
            status = await (await client.get(f"/v1/streams/{stream_id}/status")).json()
            return status if status["current_track"] == "DJ - Track 2" else None

        status = await eventually(titled, timeout=10)
        assert status["relay_connected"] is True and status["bitrate"] == "128kbps"
    finally:
        feeding.cancel()
        writer.close()


async def test_the_ingest_refuses_what_it_must(push_node):
    stream_id, ingest, dj = await register_push(push_node)
    port, mount, password = push_node.ingest_port, ingest["mount"], ingest["password"]
    # A wrong password and an unknown mount get the same answer.
    _, w1, wrong = await source_request(port, butt_head(mount, "nope"))
    _, w2, unknown = await source_request(port, butt_head("/no-such-mount", password))
    for answer in (wrong, unknown):
        assert answer.startswith(b"HTTP/1.0 401 Unauthorized")
        assert b"WWW-Authenticate: Basic" in answer
    # Ogg is refused before any audio is taken, the type named (AAC is relayed:
    # tests/integration/test_aac_sources.py).
    _, w3, aac = await source_request(port, butt_head(mount, password, "application/ogg"))
    assert aac.startswith(b"HTTP/1.0 415") and b"'application/ogg'" in aac
    # A second encoder on a live mount is refused.
    _, live_writer, first = await source_request(port, butt_head(mount, password))
    assert first.startswith(b"HTTP/1.0 200")
    feeding = asyncio.create_task(feed(live_writer, 30))
    try:
        w4 = w5 = live_writer
        _, w4, second = await source_request(port, butt_head(mount, password))
        assert second.startswith(b"HTTP/1.0 403") and b"in use" in second
        # A new password: the old one no longer opens the mount.
        rotated = await push_node.client.post(
            f"/v1/streams/{stream_id}/source-password", headers=dj
        )
        assert rotated.status == 200
        fresh = (await rotated.json())["password"]
        assert fresh != password
        _, w5, old = await source_request(port, butt_head(mount, password))
        assert old.startswith(b"HTTP/1.0 401")
    finally:
        feeding.cancel()
        for writer in (w1, w2, w3, w4, w5, live_writer):
            writer.close()
    # Disabling the stream disconnects its encoder.
    _, writer, answer = await source_request(port, butt_head(mount, fresh))
    assert answer.startswith(b"HTTP/1.0 200")
    feeding = asyncio.create_task(feed(writer, 30))
    await asyncio.sleep(0.5)
    patched = await push_node.client.patch(
        f"/v1/streams/{stream_id}", json={"enabled": False}, headers=dj
    )
    assert patched.status == 200
    with pytest.raises((ConnectionError, OSError)):
        await asyncio.wait_for(feeding, 10)


async def test_pull_fields_and_push_fields_do_not_mix(push_node):
    _, dj = await user_headers(push_node.client)
    for body in (
        {"name": "x", "source_type": "push", "shoutcast_url": "http://example.com:8000"},
        {"name": "x", "source_type": "pull"},
    ):
        response = await push_node.client.post("/v1/streams", json=body, headers=dj)
        assert response.status == 400, body
        assert (await response.json())["code"] == 400


@pytest.mark.skipif(
    shutil.which("ffmpeg") is None and not os.environ.get("CI"),
    reason="ffmpeg is not installed (apt-get install ffmpeg; .ci/run installs it)",
)
async def test_ffmpeg_pushes_over_icecast_put(push_node, tmp_path):
    assert shutil.which("ffmpeg"), "ffmpeg is required under CI"
    stream_id, ingest, _ = await register_push(push_node)
    tone = tmp_path / "tone.mp3"
    tone.write_bytes(make_mp3(20.0, frequency=660.0))
    url = f"icecast://source:{ingest['password']}@127.0.0.1:{ingest['port']}{ingest['mount']}"
    encoder = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", str(tone),
        "-c:a", "copy", "-content_type", "audio/mpeg", "-f", "mp3", url,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:

        async def live():
            response = await push_node.client.get(f"/v1/streams/{stream_id}/live.mp3")
            if response.status != 200:
                response.close()
                return None
            return response

        listener = await eventually(live, timeout=15)
        audio = await read_for(listener, 3.0)
        listener.close()
        assert decode(audio).duration > 1.5
    finally:
        encoder.kill()
        _, err = await encoder.communicate()
    assert b"Unauthorized" not in err
