"""Fake live sources on loopback: SHOUTcast v1, SHOUTcast v2 and Icecast 2, each serving an
endless real-time stream of real MP3 frames (with ICY metadata when asked) and the admin
endpoints a DJ's password is checked against; plus a web server that is no stream server.

    async with IcecastSource(title="DJ - Track 1") as source:
        ...  # relay from source.stream_url, validate source.admin_password
        source.set_title("DJ - Track 2")
        await source.stop()   # "the DJ's server died": connections dropped, port refused
        await source.start()  # back on the same port

Or with the `fake_servers` fixture (see `fake_servers_fixture`):
`source = await fake_servers(ShoutcastV1Source)`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import socket
import time
from email.utils import formatdate
from typing import TypedDict, Unpack
from xml.sax.saxutils import escape, quoteattr

from tests.audio import make_aac, make_mp3, make_ogg
from tests.livefeed import AdtsClip, BytesClip, IcyInterleaver, Mp3Clip
from tests.loopback import (
    NotAStreamServer,
    RawHttpServer,
    Request,
    ServerFactory,
    fake_servers_fixture,
    free_port,
    response_head,
)

__all__ = [
    "ICECAST_PASSWORD",
    "SHOUTCAST_PASSWORD",
    "FakeSource",
    "IcecastSource",
    "NotAStreamServer",
    "ServerFactory",
    "ShoutcastV1Source",
    "ShoutcastV2Source",
    "SourceOptions",
    "fake_servers_fixture",
    "free_port",
]

SHOUTCAST_PASSWORD = "changeme"  # the sample sc_serv.conf's
ICECAST_PASSWORD = "hackme"  # icecast.xml's default
CLIP_SECONDS = 2.0  # the tone clip each fake loops
_CONTENT_TYPES = {"mp3": "audio/mpeg", "aac": "audio/aac", "ogg": "application/ogg"}
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>\n'
_WINAMP = '<BR>This stream requires <a href="http://www.winamp.com/">Winamp</a><BR>'


class SourceOptions(TypedDict, total=False):
    """Keyword options every fake source takes besides `mount` and `admin_password`."""

    port: int  # 0: a free port, reserved until `close()`
    title: str  # the initial StreamTitle
    name: str  # icy-name / server title
    genre: str
    metaint: int  # audio bytes between ICY metadata blocks
    bitrate: int  # bit/s of the looped MP3 (CBR)
    sample_rate: int
    channels: int
    frequency: float  # Hz of the tone
    codec: str  # "mp3" (default), "aac" (ADTS, audio/aac) or "ogg" (Ogg Vorbis, refused)


def _xml_fields(fields: dict[str, object]) -> str:
    return "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in fields.items())


class FakeSource(RawHttpServer):
    """What every fake source shares: a 2 s tone clip looped at real time, the title and
    the counters. `connections` counts listener (stream) connections accepted since
    creation, `listeners` those open now, `bytes_sent` the stream body bytes written to
    them (audio and metadata)."""

    http_version = "HTTP/1.1"

    def __init__(
        self,
        *,
        mount: str,
        admin_password: str,
        port: int = 0,
        title: str = "Test Artist - First Song",
        name: str = "Fake Radio",
        genre: str = "House",
        metaint: int = 8192,
        bitrate: int = 128_000,
        sample_rate: int = 44_100,
        channels: int = 2,
        frequency: float = 440.0,
        codec: str = "mp3",
    ) -> None:
        super().__init__(port=port)
        self.mount = mount
        self.admin_password = admin_password
        self.name = name
        self.genre = genre
        self.metaint = metaint
        self.bitrate = bitrate
        self.sample_rate = sample_rate
        self.channels = channels
        self.connections = 0
        self.listeners = 0
        self.peak_listeners = 0
        self.bytes_sent = 0
        self._title = title
        self._frequency = frequency
        self._clip: Mp3Clip | AdtsClip | BytesClip
        self.use_codec(codec)
        self._epoch = time.monotonic()
        self._started_at = time.time()

    async def _serve(self, sock: socket.socket) -> None:
        self._started_at = time.time()
        await super()._serve(sock)

    def use_codec(self, codec: str) -> None:
        """The codec of the stream ("mp3", "aac" or "ogg"); changed, what a DJ changing
        encoder does: the next connections get the other one."""
        #: What the stream is served as.
        self.content_type = _CONTENT_TYPES[codec]
        audio = {
            "channels": self.channels,
            "frequency": self._frequency,
            "sample_rate": self.sample_rate,
            "bitrate": self.bitrate,
        }
        if codec == "aac":
            self._clip = AdtsClip.parse(make_aac(CLIP_SECONDS, **audio), self.sample_rate)
        elif codec == "ogg":
            self._clip = BytesClip.cut(make_ogg(CLIP_SECONDS), self.bitrate)
        else:
            self._clip = Mp3Clip.parse(make_mp3(CLIP_SECONDS, **audio))

    @property
    def title(self) -> str:
        return self._title

    def set_title(self, title: str) -> None:
        """What the DJ's software would send: listeners get it in their next metadata
        block, the admin endpoints report it at once."""
        self._title = title

    @property
    def stream_url(self) -> str:
        return f"{self.url}{self.mount}"

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        status_line: str,
        headers: list[tuple[str, str]],
        request: Request,
        separator: str = ": ",
    ) -> None:
        """Answer a listener: headers, then audio until the client or `stop()` ends it."""
        metaint = self.metaint if request.headers.get("icy-metadata") == "1" else None
        if metaint:
            headers = [*headers, ("icy-metaint", str(metaint))]
        writer.write(response_head(status_line, headers, separator))
        self.connections += 1
        self.listeners += 1
        self.peak_listeners = max(self.peak_listeners, self.listeners)
        try:
            await self._pump(writer, IcyInterleaver(metaint) if metaint else None)
        finally:
            self.listeners -= 1

    async def _pump(self, writer: asyncio.StreamWriter, icy: IcyInterleaver | None) -> None:
        """~100 ms of frames at a time, each chunk sent when its audio is due: no burst."""
        clip = self._clip
        loop = asyncio.get_running_loop()
        started = loop.time()
        # A live stream: every listener joins at the same point of the loop ("now").
        index = int((time.monotonic() - self._epoch) / clip.frame_duration)
        sent = 0.0
        while True:
            delay = started + sent - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            audio = clip.chunk(index)
            index += clip.frames_per_chunk
            sent += clip.frames_per_chunk * clip.frame_duration
            data = icy.wrap(audio, self._title) if icy else audio
            writer.write(data)
            await writer.drain()
            self.bytes_sent += len(data)

    def _reply(
        self,
        writer: asyncio.StreamWriter,
        status: str,
        content_type: str,
        body: str,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        data = body.encode()
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Connection", "close"),
            *(extra or []),
        ]
        writer.write(response_head(f"{self.http_version} {status}", headers) + data)

    def _not_found(self, writer: asyncio.StreamWriter) -> None:
        self._reply(writer, "404 Not Found", "text/html", "<html><body>Not Found</body></html>")

    def _icy_headers(self) -> list[tuple[str, str]]:
        return [
            ("icy-name", self.name),
            ("icy-genre", self.genre),
            ("icy-url", "http://www.example.com"),
            ("icy-pub", "1"),
            ("icy-br", str(self.bitrate // 1000)),
        ]


class _Shoutcast(FakeSource):
    """`/admin.cgi?mode=viewxml&pass=KEY`, the same in both SHOUTcast generations."""

    version = ""

    def _stats(self) -> dict[str, object]:
        return {
            "CURRENTLISTENERS": self.listeners,
            "PEAKLISTENERS": self.peak_listeners,
            "MAXLISTENERS": 32,
            "SERVERGENRE": self.genre,
            "SERVERURL": "http://www.example.com",
            "SERVERTITLE": self.name,
            "SONGTITLE": self._title,
            "STREAMHITS": self.connections,
            "STREAMSTATUS": 1,
            "BITRATE": self.bitrate // 1000,
            "CONTENT": self.content_type,
            "VERSION": self.version,
        }

    def _admin(self, request: Request, writer: asyncio.StreamWriter) -> None:
        if request.query("pass") != self.admin_password:
            page = "<html><head><title>SHOUTcast Administrator</title></head><body>"
            self._reply(
                writer, "401 Unauthorized", "text/html", f"{page}Invalid password</body></html>"
            )
        elif request.query("mode") == "viewxml":
            document = f"<SHOUTCASTSERVER>{_xml_fields(self._stats())}</SHOUTCASTSERVER>\n"
            self._reply(writer, "200 OK", "text/xml", _XML_DECLARATION + document)
        else:
            self._not_found(writer)


class ShoutcastV1Source(_Shoutcast):
    """SHOUTcast DNAS 1.9.x: `ICY 200 OK` status line, `name:value` headers, body until close.

    The stream answers on `/;`, `/`, `/stream` and `mount`, except that `/` with a browser
    User-Agent (`Mozilla`) gets the HTML status page, as on the real server (hence `/;`).
    `GET /admin.cgi?mode=viewxml&pass=KEY` gives the `<SHOUTCASTSERVER>` document."""

    http_version = "HTTP/1.0"
    version = "1.9.8"

    def __init__(
        self,
        *,
        mount: str = "/",
        admin_password: str = SHOUTCAST_PASSWORD,
        **options: Unpack[SourceOptions],
    ) -> None:
        super().__init__(mount=mount, admin_password=admin_password, **options)

    async def _handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        if request.path == "/admin.cgi":
            self._admin(request, writer)
        elif request.path == "/" and "mozilla" in request.headers.get("user-agent", "").lower():
            status = f"Stream is up at {self.bitrate // 1000} kbps"
            self._reply(writer, "200 OK", "text/html", f"<html><body>{status}</body></html>")
        elif request.path in {"/", "/;", "/stream", self.mount}:
            headers = [
                ("icy-notice1", _WINAMP),
                ("icy-notice2", "SHOUTcast Distributed Network Audio Server/Linux v1.9.8<BR>"),
                *self._icy_headers(),
                ("content-type", self.content_type),
            ]
            await self._stream(writer, "ICY 200 OK", headers, request, separator=":")
        else:
            self._not_found(writer)


class ShoutcastV2Source(_Shoutcast):
    """SHOUTcast DNAS 2.x, stream id 1 at `mount` (also `/;`), HTTP status lines.

    `GET /admin.cgi?sid=1&mode=viewxml&pass=KEY` → `<SHOUTCASTSERVER>` (a 401 page on a
    wrong key); `GET /statistics?json=1` → the public JSON summary."""

    version = "2.6.1.777 (posix(linux x64))"

    def __init__(
        self,
        *,
        mount: str = "/stream",
        admin_password: str = SHOUTCAST_PASSWORD,
        **options: Unpack[SourceOptions],
    ) -> None:
        super().__init__(mount=mount, admin_password=admin_password, **options)

    def _stats(self) -> dict[str, object]:
        return {**super()._stats(), "STREAMPATH": self.mount, "SAMPLERATE": self.sample_rate}

    async def _handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        if request.path in {self.mount, "/;"}:
            headers = [
                ("Content-Type", self.content_type),
                ("icy-notice1", _WINAMP),
                ("icy-notice2", "SHOUTcast DNAS/posix(linux x64) v2.6.1.777<BR>"),
                *self._icy_headers(),
                ("icy-sr", str(self.sample_rate)),
                ("Cache-Control", "no-cache, no-store"),
                ("Connection", "close"),
            ]
            await self._stream(writer, f"{self.http_version} 200 OK", headers, request)
        elif request.path == "/admin.cgi" and request.query("sid") in {None, "1"}:
            self._admin(request, writer)
        elif request.path == "/statistics" and request.query("json") == "1":
            stream = {"id": 1, **{key.lower(): value for key, value in self._stats().items()}}
            summary = {"totalstreams": 1, "activestreams": 1, "streams": [stream]}
            self._reply(writer, "200 OK", "application/json", json.dumps(summary))
        else:
            self._not_found(writer)


class IcecastSource(FakeSource):
    """Icecast 2 with one mount (default `/live`).

    `GET /admin/stats` (HTTP Basic `admin_user:admin_password`) → `<icestats>` XML, else
    401 with `WWW-Authenticate: Basic realm="Icecast2 Server"`; `GET /status-json.xsl` →
    the public JSON. Streams answer `HTTP/1.1 200 OK` + `Connection: close` (Icecast 2.5);
    `http_version="HTTP/1.0"` answers like Icecast 2.4."""

    def __init__(
        self,
        *,
        mount: str = "/live",
        admin_password: str = ICECAST_PASSWORD,
        admin_user: str = "admin",
        http_version: str = "HTTP/1.1",
        **options: Unpack[SourceOptions],
    ) -> None:
        super().__init__(mount=mount, admin_password=admin_password, **options)
        self.admin_user = admin_user
        self.http_version = http_version

    async def _handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        if request.path == self.mount:
            headers = [
                ("Server", "Icecast 2.4.4"),
                ("Content-Type", self.content_type),
                ("Cache-Control", "no-cache, no-store"),
                ("Access-Control-Allow-Origin", "*"),
                *self._icy_headers(),
                ("ice-audio-info", self._audio_info(prefix="ice-")),
                ("icy-description", f"{self.name} (fake)"),
                ("Connection", "close"),
            ]
            await self._stream(writer, f"{self.http_version} 200 OK", headers, request)
        elif request.path in {"/admin/stats", "/admin/stats.xml"}:
            if self._authorized(request.headers.get("authorization", "")):
                self._reply(writer, "200 OK", "text/xml", self._stats_xml())
            else:
                page = "<html><body><b>You need to authenticate</b></body></html>"
                realm = [("WWW-Authenticate", 'Basic realm="Icecast2 Server"')]
                self._reply(writer, "401 Authentication Required", "text/html", page, realm)
        elif request.path == "/status-json.xsl":
            stats = {"icestats": {"server_id": "Icecast 2.4.4", "source": self._source_stats()}}
            self._reply(writer, "200 OK", "application/json; charset=utf-8", json.dumps(stats))
        else:
            self._not_found(writer)

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (user, password) == (self.admin_user, self.admin_password)

    def _audio_info(self, prefix: str = "") -> str:
        values = {
            "samplerate": self.sample_rate,
            "bitrate": self.bitrate // 1000,
            "channels": self.channels,
        }
        return ";".join(f"{prefix}{key}={value}" for key, value in values.items())

    def _source_stats(self) -> dict[str, object]:
        return {
            "audio_info": self._audio_info(),
            "bitrate": self.bitrate // 1000,
            "genre": self.genre,
            "listener_peak": self.peak_listeners,
            "listeners": self.listeners,
            "listenurl": self.stream_url,
            "server_description": f"{self.name} (fake)",
            "server_name": self.name,
            "server_type": self.content_type,
            "stream_start": formatdate(self._started_at, usegmt=True),
            "title": self.title,
        }

    def _stats_xml(self) -> str:
        totals = {"host": "127.0.0.1", "listeners": self.listeners, "sources": 1}
        source = (
            f"<source mount={quoteattr(self.mount)}>{_xml_fields(self._source_stats())}</source>"
        )
        return f'<?xml version="1.0"?>\n<icestats>{_xml_fields(totals)}{source}</icestats>\n'
