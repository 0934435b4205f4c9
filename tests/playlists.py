"""For the playlist tests: another web server holding MP3s (external tracks), an object store
that counts its reads, a test server that runs handlers as `mediaserver serve` does, and
helpers to build, create and poll playlists the way a client does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hls.concat import TrackReader
from mediaserver.storage.filesystem import FileStore
from mediaserver.storage.store import primed
from tests.audio import make_mp3

PLAYLISTS = "/v1/playlists"
DEADLINE = 30.0  # seconds for a playlist's external tracks to be fetched and segmented


@dataclass
class Host:
    """Another web server with MP3s (a name ending `-chunked.mp3` is sent without a
    Content-Length), an HTML page, and 404s; counts the GETs of each file."""

    files: dict[str, bytes]
    server: TestServer | None = None
    gets: dict[str, int] = field(default_factory=dict)

    def url(self, name: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(f"/{name}"))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "page.html":
            return web.Response(text="<html></html>", content_type="text/html")
        if name not in self.files:
            raise web.HTTPNotFound()
        if request.method == "GET":
            self.gets[name] = self.gets.get(name, 0) + 1
        if not name.endswith("-chunked.mp3"):
            return web.Response(body=self.files[name], content_type="audio/mpeg")
        response = web.StreamResponse()
        response.content_type = "audio/mpeg"
        response.enable_chunked_encoding()
        await response.prepare(request)
        if request.method == "GET":
            await response.write(self.files[name])
        await response.write_eof()
        return response


async def start_host(aiohttp_server: Any) -> Host:
    """`ext.mp3` (6 s), `noise.mp3` (random bytes sent as audio/mpeg), `big-chunked.mp3`."""
    host = Host(
        {
            "ext.mp3": make_mp3(6.0, frequency=880.0),
            "noise.mp3": os.urandom(40_000),
            "big-chunked.mp3": make_mp3(6.0),
        }
    )
    app = web.Application()
    app.router.add_route("*", "/{name}", host.handle)
    host.server = await aiohttp_server(app)
    return host


class CountingStore(FileStore):
    """A filesystem store counting the bytes read from it and the reads still open."""

    bytes_read = 0
    open_reads = 0

    async def get(self, key: str) -> AsyncGenerator[bytes, None]:
        return await primed(self._counted(await super().get(key)))

    async def _counted(self, stream: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        self.open_reads += 1
        try:
            yield b""
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    self.bytes_read += len(chunk)
                    yield chunk
        finally:
            self.open_reads -= 1


class Server(TestServer):
    """A test server whose handlers are cancelled when their client leaves (`cancel`, the
    test server's default) or not (aiohttp's default, as `mediaserver serve` runs)."""

    def __init__(self, app: web.Application, cancel: bool) -> None:
        super().__init__(app)
        self.cancel = cancel

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return web.AppRunner(self.app, **{**kwargs, "handler_cancellation": self.cancel})


def upload_track(upload_id: str, **fields: Any) -> dict[str, Any]:
    return {"source_type": "upload", "upload_id": upload_id, **fields}


def external_track(url: str, **fields: Any) -> dict[str, Any]:
    return {"source_type": "external", "url": url, **fields}


def playlist_body(tracks: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    """The backlog's example body (US-3.3) with `tracks`."""
    body = {
        "title": "Chill Evening Vibes",
        "description": "Smooth tracks for an evening stream.",
        "tracks": tracks,
        "visibility": "public",
        "monetization_enabled": False,
    }
    return {**body, **changes}


async def create(node: TestClient, headers: dict[str, str], tracks: list[Any], **kw: Any) -> str:
    response = await node.post(PLAYLISTS, json=playlist_body(tracks, **kw), headers=headers)
    assert response.status == 201, await response.text()
    return str((await response.json())["playlist_id"])


async def detail(node: TestClient, headers: dict[str, str], playlist_id: str) -> dict[str, Any]:
    response = await node.get(f"{PLAYLISTS}/{playlist_id}", headers=headers)
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def wait_settled(
    node: TestClient, headers: dict[str, str], playlist_id: str
) -> dict[str, Any]:
    """Poll the playlist until it is ready or one of its tracks failed."""
    deadline = time.monotonic() + DEADLINE
    while True:
        body = await detail(node, headers, playlist_id)
        if body["hls_ready"] or any(t["status"] == "failed" for t in body["tracks"]):
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


async def error_of(response: Any) -> tuple[int, str]:
    return response.status, (await response.json())["error"]


async def plays(node: TestClient, headers: dict[str, str], playlist_id: str) -> int:
    """`total_plays` of the playlist's analytics report (US-5.4)."""
    response = await node.get(f"/v1/analytics/playlists/{playlist_id}", headers=headers)
    assert response.status == 200, await response.text()
    return int((await response.json())["total_plays"])


def audio_frames(data: bytes) -> int:
    """MP3 frames of audio in a file (tags and its Xing/Info frame left out)."""
    reader = TrackReader()
    return len(reader.feed(data)) + len(reader.flush())
