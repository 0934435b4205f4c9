"""A node for the podcast tests (the real app on a real database, with a clock the test moves
and external media allowed on loopback), an audio host to point external episodes at, and
helpers to create podcasts and episodes the way a client does."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import create_autospec

import av
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mediaserver.app import build_app
from mediaserver.clock import utcnow
from tests.audio import make_mp3
from tests.loopback import LoopbackServer
from tests.streams import subscriber_of

PODCASTS = "/v1/podcasts"
PUBLIC_URL = "https://pods.example.com"
#: The ID3v2 tag before `/tagged.mp3`'s audio: longer than the 64 KiB a probe looks at first.
TAG_BYTES = 200 * 1024
IMAGE_URL = "https://cdn.example.com/images/podcast-cover.jpg"
NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
}
#: Every kind of text that breaks naive XML writers.
HOSTILE = "Tom & Jerry <b>live</b> ]]> <![CDATA[x]]> \"q\" 'a' 🎧🔥 שלום עולם مرحبا \u202eevil"

__all__ = ["subscriber_of"]


@dataclass
class PodNode:
    client: TestClient
    clock: Any  # create_autospec(utcnow): set `clock.return_value` to move time

    def advance(self, **delta: float) -> None:
        self.clock.return_value += timedelta(**delta)

    @property
    def now(self) -> datetime:
        value: datetime = self.clock.return_value
        return value


async def start_pod_node(
    make_client: Callable[..., Any],
    make_settings: Callable[..., Any],
    secrets: Any,
    **overrides: Any,
) -> PodNode:
    clock = create_autospec(utcnow, return_value=datetime.now(UTC))
    values: dict[str, Any] = {
        "public_url": PUBLIC_URL,
        "allow_private_media_urls": True,
        "domain_verify_delay_seconds": 5,
    }
    values.update(overrides)
    app = build_app(make_settings(**values), secrets, clock=clock)
    return PodNode(await make_client(app), clock)


async def start_pod_node_with_cache(
    request: Any, make_client: Callable[..., Any], make_settings: Callable[..., Any], secrets: Any
) -> PodNode:
    """`start_pod_node` for a fixture parametrized with the feed cache: "memory" (one
    node) or "redis" (the local Redis server)."""
    overrides: dict[str, Any] = {}
    if request.param == "redis":
        overrides["redis_url"] = request.getfixturevalue("redis_url")
    return await start_pod_node(make_client, make_settings, secrets, **overrides)


@dataclass
class AudioHost:
    """An external web server serving one MP3 in several ways (see `audio_app`)."""

    server: TestServer
    audio: bytes
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)

    def url(self, path: str = "/episode.mp3") -> str:
        return str(self.server.make_url(path))


def audio_app(host: AudioHost) -> web.Application:
    """`/episode.mp3` (Content-Length, ranges ignored), `/chunked.mp3` (no length; ranges
    give the total), `/unsized.mp3` (no length, ranges ignored), `/tagged.mp3` (an ID3v2
    tag of `TAG_BYTES` — cover art — before the audio, ranges honoured), `/long.mp3` (7 s),
    `/noise.mp3` (served as audio/mpeg, no MPEG frames in it), `/page.html`,
    `/missing.mp3` (404), `/moved.mp3` (302 → /episode.mp3)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        host.requests.append((request.method, request.path, request.headers.get("Range")))
        name = request.path
        if name == "/episode.mp3":
            return web.Response(body=host.audio, content_type="audio/mpeg")
        if name == "/moved.mp3":
            raise web.HTTPFound("/episode.mp3")
        if name == "/page.html":
            return web.Response(text="<html></html>", content_type="text/html")
        if name in ("/chunked.mp3", "/unsized.mp3"):
            return await _unsized(request, host.audio, ranged=name == "/chunked.mp3")
        if name == "/tagged.mp3":
            return _ranged(request, id3_tag(TAG_BYTES) + host.audio)
        if name == "/long.mp3":
            return _ranged(request, make_mp3(7.0))
        if name == "/noise.mp3":
            return _ranged(request, bytes(range(256)) * 1000)
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_route("*", "/{name:.*}", handle)
    return app


def _ranged(request: web.Request, audio: bytes) -> web.Response:
    """`audio` whole, or the one `bytes=first-last` range asked for (206)."""
    match = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers.get("Range", ""))
    if match is None:
        return web.Response(body=audio, content_type="audio/mpeg")
    first, last = int(match.group(1)), min(int(match.group(2)), len(audio) - 1)
    headers = {"Content-Range": f"bytes {first}-{last}/{len(audio)}"}
    body = audio[first : last + 1]
    return web.Response(status=206, body=body, content_type="audio/mpeg", headers=headers)


def id3_tag(payload_size: int) -> bytes:
    """An ID3v2.4 tag of `payload_size` bytes of padding after its 10-byte header."""
    size = bytes((payload_size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + size + bytes(payload_size)


async def _unsized(request: web.Request, audio: bytes, ranged: bool) -> web.StreamResponse:
    if ranged and "Range" in request.headers:
        return _ranged(request, audio)
    response = web.StreamResponse()
    response.content_type = "audio/mpeg"
    response.enable_chunked_encoding()
    await response.prepare(request)
    if request.method != "HEAD":
        await response.write(audio)
    await response.write_eof()
    return response


async def start_audio_host(aiohttp_server: Any, seconds: float = 3.0) -> AudioHost:
    host = AudioHost(server=None, audio=make_mp3(seconds))  # type: ignore[arg-type]
    host.server = await aiohttp_server(audio_app(host))
    return host


def podcast_body(**changes: Any) -> dict[str, Any]:
    """The backlog's example body (US-4.1)."""
    body: dict[str, Any] = {
        "title": "Tech DJ Podcast",
        "description": "Weekly interviews with top DJs and music producers.",
        "language": "en-us",
        "author": "DJ Example",
        "image_url": IMAGE_URL,
        "explicit": False,
        "custom_domain": None,
        "monetization_enabled": False,
    }
    body.update(changes)
    return body


async def create_podcast(client: TestClient, headers: dict[str, str], **changes: Any) -> str:
    response = await client.post(PODCASTS, json=podcast_body(**changes), headers=headers)
    assert response.status == 201, await response.text()
    return str((await response.json())["podcast_id"])


def external_episode(media_url: str, number: int | None = 1, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": f"Episode {number}: Live from Ibiza",
        "description": "Exclusive set and interview.",
        "source_type": "external",
        "upload_id": None,
        "media_url": media_url,
        "duration_seconds": 3,
        "publication_date": "2025-06-10T14:00:00Z",
        "episode_number": number,
        "explicit": False,
        "monetization_required": False,
    }
    body.update(changes)
    return body


async def add_episode(
    client: TestClient, headers: dict[str, str], podcast_id: str, body: dict[str, Any]
) -> str:
    response = await client.post(f"{PODCASTS}/{podcast_id}/episodes", json=body, headers=headers)
    assert response.status == 201, await response.text()
    return str((await response.json())["episode_id"])


async def get_feed(
    client: TestClient, podcast_id: str, headers: dict[str, str] | None = None
) -> ET.Element:
    """The feed parsed by an XML parser (200 expected)."""
    response = await client.get(f"{PODCASTS}/{podcast_id}/rss.xml", headers=headers or {})
    assert response.status == 200, await response.text()
    return parse_xml(await response.read())


def parse_xml(body: bytes) -> ET.Element:
    """Parse a document this server wrote (trusted input, so the stdlib parser is fine)."""
    return ET.fromstring(body)  # noqa: S314


def items(feed: ET.Element) -> list[ET.Element]:
    return feed.findall("./channel/item")


def guids(feed: ET.Element) -> list[str]:
    return [item.findtext("guid") or "" for item in items(feed)]


def new_id() -> str:
    return str(uuid.uuid4())


def seek_and_decode(url: str, seconds: float) -> float:
    """Where the first frame decoded after seeking to `seconds` in `url` starts (blocking:
    libavformat reopens the URL with a byte range, as a podcast app scrubbing does)."""
    with av.open(url, timeout=10) as container:
        stream = container.streams.audio[0]
        assert stream.time_base is not None
        container.seek(int(seconds / stream.time_base), stream=stream)
        frame = next(container.decode(stream))
        return float(frame.time or 0.0)


class TcpProxy(LoopbackServer):
    """Forwards every connection to `upstream` (host, port) — a Redis server the test can
    take away (`stop()`: connections dropped, new ones refused) and bring back (`start()`)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__()
        self._upstream = upstream
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()

    async def _serve(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._on_connection, sock=sock)

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in self._pumps:
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        pumps = [
            asyncio.create_task(_pump(reader, up_writer)),
            asyncio.create_task(_pump(up_reader, writer)),
        ]
        for task in pumps:
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for stream in (writer, up_writer):
                stream.close()
                with contextlib.suppress(OSError):
                    await stream.wait_closed()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
