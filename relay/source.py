"""Pulls one live stream from a SHOUTcast/Icecast server, like a listener would.

`GET <mount>` with `Icy-MetaData: 1` over HTTP/1.0 (so no server chunks the body); the
answer may start with `ICY 200 OK` (SHOUTcast v1) or `HTTP/1.x 200`. Bytes go through the
ICY demuxer and the frame reader of the stream's codec (`relay.codec`: MP3 or AAC in ADTS,
by the `Content-Type`; anything else is refused); frames and titles go to a `SourceSink`.
Any failure ends the connection and `run()` reconnects with jittered exponential backoff
(1 s → 30 s): an unexpected one (a bug, in a parser or a sink) is logged with its traceback
first, so a bad header never stops a stream's relay for good. Numeric headers count only
ASCII digits (`str.isdigit` also accepts `²`, which `int` refuses).
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from relay.codec import AudioFrame, Codec, codec_for, unsupported_type
from relay.icy import Audio, IcyDemuxer

log = logging.getLogger(__name__)

USER_AGENT = "mediaserver-relay/0.1"
MAX_HEAD_BYTES = 64 * 1024


#: `SourceClient(address_of=…)`: (host, port) → the address to connect to, or OSError.
AddressCheck = Callable[[str, int], Awaitable[str]]


class SourceError(Exception):
    """The source answered something we cannot relay, or the connection failed."""


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names

    @property
    def metaint(self) -> int | None:
        value = ascii_int(self.headers.get("icy-metaint", ""))
        return value if value else None

    @property
    def bitrate_kbps(self) -> int | None:
        return ascii_int(self.headers.get("icy-br", "").split(",")[0].strip())


def ascii_int(value: str) -> int | None:
    """A header's non-negative decimal number: ASCII digits only, else None."""
    return int(value) if value.isascii() and value.isdigit() else None


def parse_response_head(raw: bytes) -> ResponseHead:
    """Status line + headers of an HTTP/1.x or ICY response (`raw` ends at the blank line)."""
    lines = (
        raw.decode("latin-1").split("\r\n") if b"\r\n" in raw else raw.decode("latin-1").split("\n")
    )
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not (parts[0] == "ICY" or parts[0].startswith("HTTP/")):
        raise SourceError(f"not an HTTP or ICY response: {lines[0][:80]!r}")
    status = ascii_int(parts[1])
    if status is None:
        raise SourceError(f"bad status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return ResponseHead(status, parts[2] if len(parts) > 2 else "", headers)


class SourceSink(Protocol):
    def on_connected(self, head: ResponseHead) -> None: ...
    def on_frames(self, frames: Sequence[AudioFrame]) -> None: ...
    def on_metadata(self, fields: dict[str, str]) -> None: ...
    def on_disconnected(self, reason: str) -> None: ...


class SourceClient:
    """One stream's connection to its source, reconnecting until cancelled."""

    def __init__(
        self,
        url: str,
        sink: SourceSink,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 15.0,
        backoff: tuple[float, float] = (1.0, 30.0),
        stream_id: str = "",
        address_of: AddressCheck | None = None,
    ) -> None:
        self.url = url
        #: The address to connect to for a host (and port), or OSError when it may not be
        #: reached; None: any address the system resolves. Asked at every connection,
        #: redirects included, so a changed DNS answer is judged too.
        self._address_of = address_of
        self.stream_id = stream_id  # for the logs
        self._sink = sink
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._backoff = backoff
        self.connects = 0

    async def run(self) -> None:
        delay = self._backoff[0]
        while True:
            received = False
            try:
                received = await self._session()
                reason = "source closed the connection"
            except (OSError, SourceError, TimeoutError, asyncio.IncompleteReadError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # the task's supervisor: a bug must not end the relay
                reason = f"unexpected {type(exc).__name__}: {exc}"
                log.exception(
                    "relay source failed", extra={"stream_id": self.stream_id, "url": self.url}
                )
            self._sink.on_disconnected(reason)
            if received:
                delay = self._backoff[0]
            wait = random.uniform(delay / 2, delay)  # noqa: S311 (jitter, not crypto)
            log.info(
                "source disconnected",
                extra={
                    "stream_id": self.stream_id,
                    "url": self.url,
                    "reason": reason,
                    "retry_in": round(wait, 2),
                },
            )
            await asyncio.sleep(wait)
            delay = min(delay * 2, self._backoff[1])

    async def _session(self) -> bool:
        """One connection; returns whether any audio arrived (to reset the backoff)."""
        reader, writer, head = await self._open(self.url, redirects=3)
        try:
            codec = codec_for(head.headers.get("content-type"))
            if codec is None:
                raise SourceError(unsupported_type(head.headers.get("content-type")))
            self.connects += 1
            self._sink.on_connected(head)
            return await self._pump(reader, head, codec)
        finally:
            writer.close()

    async def _pump(self, reader: asyncio.StreamReader, head: ResponseHead, codec: Codec) -> bool:
        demuxer, frames = IcyDemuxer(head.metaint), codec.reader()
        received = False
        while True:
            async with asyncio.timeout(self._read_timeout):  # not wait_for: mediaserver/jobs.py
                data = await reader.read(64 * 1024)
            if not data:
                return received
            for event in demuxer.feed(data):
                if isinstance(event, Audio):
                    ready = frames.feed(event.data)
                    if ready:
                        received = True
                        self._sink.on_frames(ready)
                elif event.fields:
                    self._sink.on_metadata(event.fields)

    async def _open(
        self, url: str, redirects: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, ResponseHead]:
        parts = urlsplit(url)
        secure = parts.scheme == "https"
        host, port = parts.hostname or "", parts.port or (443 if secure else 80)
        async with asyncio.timeout(self._connect_timeout):
            address = host if self._address_of is None else await self._address_of(host, port)
            reader, writer = await asyncio.open_connection(
                address,
                port,
                ssl=ssl.create_default_context() if secure else None,
                server_hostname=host if secure else None,
                limit=MAX_HEAD_BYTES,
            )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Closed on every way out but success: a source that hangs up mid-head, a malformed
        # head, a timeout or the relay stopped meanwhile (a writer left open warns when
        # collected after its loop closed).
        try:
            writer.write(
                f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nUser-Agent: {USER_AGENT}\r\n"
                "Icy-MetaData: 1\r\nAccept: */*\r\nConnection: close\r\n\r\n".encode("latin-1")
            )
            try:
                async with asyncio.timeout(self._connect_timeout):
                    raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                raise SourceError("response head too large") from None
            head = parse_response_head(raw)
            redirect = head.status in (301, 302, 303, 307, 308) and "location" in head.headers
            if head.status != 200 and not (redirect and redirects):
                raise SourceError(f"source answered {head.status} {head.reason}")
        except BaseException:
            writer.close()
            raise
        if head.status != 200:  # a redirect to follow
            writer.close()
            return await self._open(urljoin(url, head.headers["location"]), redirects - 1)
        return reader, writer, head
