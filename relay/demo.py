"""`mediaserver serve --demo`: a built-in Icecast-like source on loopback playing a
generated clip in a loop with changing titles, registered as a public stream, so a
newcomer can press play at once. It speaks just enough Icecast for the relay and the
registration probe: `GET /demo` (ICY metadata on request) and `GET /admin/stats`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from relay.icy import encode_metadata, interleave
from relay.mp3 import Frame, Mp3FrameReader

log = logging.getLogger(__name__)
MOUNT = "/demo"
METAINT = 16_000
#: A client that takes nothing for this long is dropped (the relay reads continuously).
DRAIN_TIMEOUT = 10.0


@dataclass
class _Clip:
    frames: list[Frame]
    titles: list[str]
    seconds_per_title: float


@dataclass
class DemoSource:
    """Serves the clip in real time to every connected client."""

    clip: _Clip
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    title: str = ""
    _server: asyncio.Server | None = None
    _clients: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def from_mp3(cls, data: bytes, titles: list[str], seconds_per_title: float) -> DemoSource:
        reader = Mp3FrameReader()
        frames = [f for f in reader.feed(data) + reader.flush() if not f.is_info_frame]
        return cls(_Clip(frames, titles, seconds_per_title), title=titles[0])

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        for task in list(self._clients):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            async with asyncio.timeout(10):  # not wait_for: see mediaserver/jobs.py
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            path = head.split(" ", 2)[1] if head.count(" ") >= 2 else "/"
            if path.startswith("/admin/stats"):
                writer.write(self._stats(head))
            elif path == MOUNT:
                await self._stream(writer, "icy-metadata: 1" in head.lower())
            else:
                writer.write(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await _drain(writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()

    def _stats(self, head: str) -> bytes:
        expected = base64.b64encode(f"admin:{self.password}".encode()).decode()
        if f"authorization: basic {expected.lower()}" not in head.lower():
            return (
                b'HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm="Icecast2 Server"'
                b"\r\nContent-Length: 0\r\n\r\n"
            )
        body = (
            f'<?xml version="1.0"?><icestats><server_id>mediaserver demo</server_id>'
            f'<source mount="{MOUNT}"><title>{escape(self.title)}</title><listeners>'
            f"{len(self._clients)}</listeners><bitrate>128</bitrate>"
            f"<server_type>audio/mpeg</server_type></source></icestats>"
        ).encode()
        return b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%b" % (
            len(body),
            body,
        )

    async def _stream(self, writer: asyncio.StreamWriter, icy: bool) -> None:
        headers = [
            "HTTP/1.0 200 OK",
            "Content-Type: audio/mpeg",
            "icy-name: mediaserver demo",
            "icy-genre: Ambient",
            "icy-br: 128",
        ]
        if icy:
            headers.append(f"icy-metaint: {METAINT}")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode())
        loop = asyncio.get_running_loop()
        offset, due = 0, loop.time()
        while True:
            for index in range(0, len(self.clip.frames), 4):  # ~100 ms at a time, paced
                batch = self.clip.frames[index : index + 4]
                self.title = self._title_at(index)
                data = b"".join(f.data for f in batch)
                out = interleave(data, offset, METAINT, self._block()) if icy else data
                offset += len(data)
                writer.write(out)
                await _drain(writer)
                due += sum(f.duration for f in batch)
                await asyncio.sleep(max(0.0, due - loop.time()))

    def _title_at(self, frame_index: int) -> str:
        seconds = frame_index * self.clip.frames[0].duration
        titles = self.clip.titles
        return titles[min(len(titles) - 1, int(seconds // self.clip.seconds_per_title))]

    def _block(self) -> bytes:
        return encode_metadata({"StreamTitle": self.title, "StreamUrl": ""})


async def _drain(writer: asyncio.StreamWriter) -> None:
    """`drain()`, bounded: a listener that stops reading cannot hold the demo source."""
    async with asyncio.timeout(DRAIN_TIMEOUT):
        await writer.drain()
