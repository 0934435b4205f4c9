"""The fake sources of tests/sources.py behave like the servers they stand for, seen from
plain clients (aiohttp, raw sockets) and a real decoder (libavcodec through PyAV)."""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import aiohttp
import av
import pytest

from tests.audio import decode_duration
from tests.sources import (
    ICECAST_PASSWORD,
    SHOUTCAST_PASSWORD,
    FakeSource,
    IcecastSource,
    NotAStreamServer,
    ServerFactory,
    ShoutcastV1Source,
    ShoutcastV2Source,
    fake_servers_fixture,  # noqa: F401 - provides the fake_servers fixture
)

KINDS = [ShoutcastV1Source, ShoutcastV2Source, IcecastSource]
BYTES_PER_SECOND = 128_000 // 8
FIRST_TITLE = "Test Artist - First Song"


def _parse_xml(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - our own fake's output, not untrusted input


@dataclass
class Listener:
    status_line: str
    headers: dict[str, str]  # names lower-cased
    read: Callable[[int], Awaitable[bytes]]  # exactly n bytes
    read_to_end: Callable[[], Awaitable[bytes]]


async def _raw_head(
    source: FakeSource, path: str, headers: dict[str, str], version: str = "HTTP/1.0"
) -> tuple[list[str], asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", source.port)
    lines = [f"GET {path} {version}", f"Host: 127.0.0.1:{source.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    return head.decode().split("\r\n")[:-2], reader, writer


@asynccontextmanager
async def listen(source: FakeSource, *, icy: bool = True) -> AsyncIterator[Listener]:
    """A listener on the source's stream: raw socket for SHOUTcast v1 (aiohttp, like most
    HTTP clients, refuses its `ICY 200 OK` status line), aiohttp for the others."""
    request_headers = {"Icy-MetaData": "1"} if icy else {}
    if isinstance(source, ShoutcastV1Source):
        lines, reader, writer = await _raw_head(source, "/;", request_headers)
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

        async def read_to_end() -> bytes:
            try:
                return await reader.read()
            except ConnectionResetError:
                return b""

        try:
            yield Listener(lines[0], headers, reader.readexactly, read_to_end)
        finally:
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()
        return
    async with (
        aiohttp.ClientSession() as session,
        session.get(source.stream_url, headers=request_headers) as response,
    ):

        async def read_to_end_http() -> bytes:
            try:
                return await response.content.read()
            except aiohttp.ClientPayloadError:
                return b""

        status_line = f"HTTP/{response.version.major}.{response.version.minor} {response.status}"
        headers = {name.lower(): value for name, value in response.headers.items()}
        yield Listener(status_line, headers, response.content.readexactly, read_to_end_http)


async def test_shoutcast_v1_answers_with_an_icy_status_line(fake_servers: ServerFactory) -> None:
    source = await fake_servers(ShoutcastV1Source)
    for version in ("HTTP/1.0", "HTTP/1.1"):
        lines, reader, writer = await _raw_head(source, "/;", {"Icy-MetaData": "1"}, version)
        first_bytes = await reader.readexactly(2)
        writer.close()
        await writer.wait_closed()
        assert lines[0] == "ICY 200 OK"
        assert {"icy-metaint:8192", "icy-br:128", "content-type:audio/mpeg"} <= set(lines)
        assert not any(line.lower().startswith("transfer-encoding") for line in lines)
        assert first_bytes[0] == 0xFF and first_bytes[1] & 0xE0 == 0xE0  # MP3 frame sync

    lines, _, writer = await _raw_head(source, "/;", {})
    writer.close()
    await writer.wait_closed()
    assert not any(line.startswith("icy-metaint") for line in lines)


async def test_shoutcast_v1_shows_browsers_its_status_page(fake_servers: ServerFactory) -> None:
    source = await fake_servers(ShoutcastV1Source)
    async with aiohttp.ClientSession(headers={"User-Agent": "Mozilla/5.0"}) as session:
        async with session.get(f"{source.url}/") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
    assert source.connections == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_is_real_time_mp3_with_icy_metadata(
    fake_servers: ServerFactory, kind: type[FakeSource]
) -> None:
    source = await fake_servers(kind)
    audio, blocks = bytearray(), []
    started = time.monotonic()
    async with listen(source) as listener:
        metaint = int(listener.headers["icy-metaint"])
        while len(audio) < 3 * BYTES_PER_SECOND:
            audio += await listener.read(metaint)
            length = (await listener.read(1))[0]
            blocks.append(await listener.read(length * 16))
            if len(audio) >= BYTES_PER_SECOND and source.title == FIRST_TITLE:
                source.set_title("DJ Fake - Second Song")
    elapsed = time.monotonic() - started

    received = len(audio) / BYTES_PER_SECOND
    assert metaint == 8192
    assert listener.status_line in {"ICY 200 OK", "HTTP/1.1 200"}
    assert listener.headers["icy-br"] == "128"
    assert received - 0.25 <= elapsed <= received + 1.0  # paced, no burst, not starved
    # A 40-byte StreamTitle: length byte 3, then 3 × 16 bytes NUL-padded.
    assert blocks[0] == f"StreamTitle='{FIRST_TITLE}';".encode().ljust(48, b"\0")
    changed = [i for i, block in enumerate(blocks) if block]
    assert len(changed) == 2 and changed[0] == 0, "a title is sent once, then empty blocks"
    assert blocks[changed[1]].rstrip(b"\0") == b"StreamTitle='DJ Fake - Second Song';"
    decoded = await asyncio.to_thread(decode_duration, bytes(audio), format="mp3")
    assert decoded == pytest.approx(received, abs=0.06)  # all but a torn last frame


async def test_stream_without_icy_metadata_is_plain_mp3(fake_servers: ServerFactory) -> None:
    async def one_second(kind: type[FakeSource]) -> tuple[dict[str, str], bytes]:
        async with listen(await fake_servers(kind), icy=False) as listener:
            return listener.headers, await listener.read(BYTES_PER_SECOND)

    for headers, audio in await asyncio.gather(*(one_second(kind) for kind in KINDS)):
        assert "icy-metaint" not in headers
        assert headers.get("content-type") == "audio/mpeg"
        # A metadata block in the middle would make the decoder fail ("Header missing").
        decoded = await asyncio.to_thread(decode_duration, audio, format="mp3")
        assert decoded == pytest.approx(1.0, abs=0.06)


async def test_a_real_decoder_plays_the_v1_stream_over_http(fake_servers: ServerFactory) -> None:
    source = await fake_servers(ShoutcastV1Source)
    decoded = await asyncio.to_thread(decode_duration, f"{source.url}/;", limit=1.0)
    assert decoded >= 1.0
    assert source.connections == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_stop_drops_listeners_and_start_serves_again_on_the_same_port(
    fake_servers: ServerFactory, kind: type[FakeSource]
) -> None:
    source = await fake_servers(kind)
    port = source.port
    async with listen(source, icy=False) as listener:
        await listener.read(4096)
        await source.stop()
        await asyncio.wait_for(listener.read_to_end(), timeout=2)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)

    await source.start()
    async with listen(source, icy=False) as listener:
        first = await listener.read(4096)
    assert source.port == port
    assert first[0] == 0xFF and first[1] & 0xE0 == 0xE0
    assert source.connections == 2


async def _get(url: str, authorization: str | None = None) -> tuple[int, dict[str, str], str]:
    headers = {"Authorization": authorization} if authorization else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, dict(response.headers), await response.text()


@pytest.mark.parametrize(
    ("kind", "admin_path"),
    [
        (ShoutcastV1Source, "/admin.cgi?mode=viewxml&pass="),
        (ShoutcastV2Source, "/admin.cgi?sid=1&mode=viewxml&pass="),
    ],
)
async def test_shoutcast_admin_checks_the_password(
    fake_servers: ServerFactory, kind: type[FakeSource], admin_path: str
) -> None:
    source = await fake_servers(kind, title="Ünïcode & <Co>")
    async with listen(source) as listener:
        await listener.read(1)
        status, headers, body = await _get(source.url + admin_path + SHOUTCAST_PASSWORD)
    assert status == 200
    assert headers["Content-Type"].startswith("text/xml")
    document = _parse_xml(body)
    assert document.tag == "SHOUTCASTSERVER"
    assert document.findtext("SONGTITLE") == "Ünïcode & <Co>"
    assert document.findtext("STREAMSTATUS") == "1"
    assert document.findtext("BITRATE") == "128"
    assert document.findtext("CURRENTLISTENERS") == "1"
    assert document.findtext("SERVERGENRE") == "House"

    status, _, body = await _get(source.url + admin_path + "wrong")
    assert status == 401
    assert "<SHOUTCASTSERVER>" not in body


async def test_shoutcast_v2_publishes_json_statistics(fake_servers: ServerFactory) -> None:
    source = await fake_servers(ShoutcastV2Source)
    status, _, body = await _get(f"{source.url}/statistics?json=1")
    assert status == 200
    stream = json.loads(body)["streams"][0]
    assert (stream["id"], stream["songtitle"], stream["streamstatus"]) == (1, FIRST_TITLE, 1)


async def test_icecast_admin_stats_need_basic_auth(fake_servers: ServerFactory) -> None:
    source = await fake_servers(IcecastSource)
    source.set_title("Icy Artist - Cold Song")
    stats_url = f"{source.url}/admin/stats"
    status, headers, body = await _get(
        stats_url, aiohttp.encode_basic_auth("admin", ICECAST_PASSWORD)
    )
    assert status == 200
    mount = _parse_xml(body).find("source[@mount='/live']")
    assert mount is not None
    assert mount.findtext("title") == "Icy Artist - Cold Song"
    assert mount.findtext("server_type") == "audio/mpeg"
    assert mount.findtext("bitrate") == "128"

    for authorization in (aiohttp.encode_basic_auth("admin", "wrong"), None):
        status, headers, _ = await _get(stats_url, authorization)
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Basic realm="Icecast2 Server"'

    status, _, body = await _get(f"{source.url}/status-json.xsl")
    assert json.loads(body)["icestats"]["source"]["title"] == "Icy Artist - Cold Song"


async def test_not_a_stream_server_is_a_plain_web_site(fake_servers: ServerFactory) -> None:
    server = await fake_servers(NotAStreamServer)
    for path in ("/", "/admin.cgi?mode=viewxml&pass=x", "/live"):
        status, headers, body = await _get(server.url + path)
        assert (status, headers["Content-Type"].split(";")[0]) == (200, "text/html")
        assert "hello" in body
    with pytest.raises(av.error.InvalidDataError):
        await asyncio.to_thread(decode_duration, f"{server.url}/live")
