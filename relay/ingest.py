"""The Icecast source protocol: DJs' encoders push a live stream to the node.

What Icecast 2.4 accepts, on a listener of its own (`INGEST_PORT`):

- `SOURCE /<mount> HTTP/1.0` (BUTT, Mixxx, libshout before 2.4) and `PUT /<mount>`
  (ffmpeg's `icecast://`, libshout ≥ 2.4), with `Authorization: Basic source:<password>`
  and the `ice-*` headers. The node answers `200 OK` (or `100 Continue` when asked) and
  then reads audio until the encoder closes: a raw body, or a chunked one.
- `GET /admin/metadata?mount=/<mount>&mode=updinfo&song=<title>`, same credentials: the
  now-playing title (encoders send it beside the audio).

Why not on the HTTP port: `SOURCE` and ffmpeg's `PUT` send their body with neither a
`Content-Length` nor chunking, "until the connection closes". HTTP/1.1 gives a request no
such body, so aiohttp's parser reads none, and its public API offers no way to take the
connection's raw bytes over. A listener of our own reads them as Icecast does.

The node decides who may push what (`IngestGate`); this module only speaks the protocol
and feeds the audio to the `SourceSink` it is given (the stream's relay), like a pulled
source does. Nothing secret is logged: not the password, not the Authorization header.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from relay.codec import codec_for, media_type, unsupported_type
from relay.source import ResponseHead, SourceSink

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 16 * 1024
_REALM = 'Basic realm="Icecast2 Server"'


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    path: str  # percent-decoded, without the query
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(user, password) of `Authorization: Basic`, None when absent or malformed."""
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = (
                base64.b64decode(value.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None


class IngestError(Exception):
    """Answer the encoder with `status` and `reason`, then close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_request_head(raw: bytes) -> RequestHead:
    """The request line and headers (`raw` ends at the blank line); `IngestError` 400."""
    lines = raw.decode("latin-1").replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith(("HTTP/1.", "ICE/1.")):
        raise IngestError(400, "Bad request line")
    method, target = parts[0].upper(), urlsplit(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    query = {k: v[-1] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
    return RequestHead(method, unquote(target.path or "/"), query, headers)


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    reason: str


class IngestGate(Protocol):
    """What the node decides for the ingest."""

    async def open_source(
        self, mount: str, password: str, head: RequestHead
    ) -> SourceSink | Refusal:
        """The sink (the stream's relay) an encoder may feed, or why not: 401 for a wrong
        password and an unknown mount alike, 403 when another encoder feeds the mount."""
        ...

    def accepting(self, sink: SourceSink) -> bool:
        """Whether `sink` still takes audio (False once the stream was stopped, deleted or
        taken by an encoder on another node: this encoder is then disconnected)."""
        ...

    def close_source(self, mount: str, sink: SourceSink) -> None:
        """The encoder of `mount` is gone (after `sink.on_disconnected`)."""
        ...

    async def update_metadata(self, mount: str, password: str, title: str) -> Refusal | None:
        """Set the now-playing title of `mount`; None when done."""
        ...


class IngestServer:
    """Serves the source protocol on one listening socket (`start`), or on connections
    handed to `handle`."""

    def __init__(self, gate: IngestGate, *, read_timeout: float = 15.0) -> None:
        self._gate = gate
        self._read_timeout = read_timeout
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD_BYTES)

    async def close(self) -> None:
        """Stop listening and drop the encoders (their relays see the source go)."""
        if self._server is not None:
            self._server.close()
        # Closing a connection ends its handler's read (cancelling the handler instead
        # would make asyncio log the cancellation as an error).
        for writer in self._connections.values():
            writer.close()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            await self.handle(reader, writer)
        finally:
            del self._connections[task]
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self._read_timeout):
                raw = await reader.readuntil(b"\r\n\r\n")
            head = parse_request_head(raw)
            if head.method in ("SOURCE", "PUT"):
                await self._source(head, reader, writer)
            elif head.method == "GET" and head.path == "/admin/metadata":
                await self._metadata(head, writer)
            else:
                raise IngestError(405, "Only SOURCE, PUT and GET /admin/metadata are served")
        except IngestError as exc:
            _answer(writer, exc.status, exc.reason)
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            _answer(writer, 400, "Bad request")
        except (TimeoutError, OSError):
            pass  # the encoder went away or said nothing: nothing to answer
        with contextlib.suppress(OSError):
            await writer.drain()

    async def _source(
        self, head: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        mount, password = head.path, _password(head)
        content_type = head.headers.get("content-type")
        codec = codec_for(content_type)
        if codec is None:  # before any audio is taken, and before the password is checked
            raise IngestError(415, unsupported_type(content_type))
        opened = await self._gate.open_source(mount, password, head)
        if isinstance(opened, Refusal):
            raise IngestError(opened.status, opened.reason)
        sink = opened
        if head.headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        else:
            writer.write(b"HTTP/1.0 200 OK\r\nServer: mediaserver\r\n\r\n")
        await writer.drain()
        log.info("encoder connected", extra={"mount": mount, "method": head.method})
        reason = "encoder disconnected"
        headers = {**_icy_headers(head), "content-type": media_type(content_type)}
        sink.on_connected(ResponseHead(200, "OK", headers))
        try:
            frames = codec.reader()
            async for data in self._body(head, reader):
                if not self._gate.accepting(sink):
                    reason = "stream stopped or taken over"
                    break
                ready = frames.feed(data)
                if ready:
                    sink.on_frames(ready)
        except TimeoutError:
            reason = f"no audio for {self._read_timeout:g} s"
        except (OSError, asyncio.IncompleteReadError, IngestError):
            reason = "encoder connection failed"
        finally:
            sink.on_disconnected(reason)
            self._gate.close_source(mount, sink)
            log.info("encoder disconnected", extra={"mount": mount, "reason": reason})

    async def _body(self, head: RequestHead, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        """The audio: chunked, `Content-Length` bytes, or until the encoder closes."""
        timeout = self._read_timeout
        if head.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                async with asyncio.timeout(timeout):
                    size_line = await reader.readuntil(b"\r\n")
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise IngestError(400, "Bad chunk") from None
                if size == 0:
                    return
                async with asyncio.timeout(timeout):
                    chunk = await reader.readexactly(size + 2)
                yield chunk[:-2]
        left = _length(head)
        while left is None or left > 0:
            async with asyncio.timeout(timeout):
                data = await reader.read(64 * 1024 if left is None else min(left, 64 * 1024))
            if not data:
                return
            if left is not None:
                left -= len(data)
            yield data

    async def _metadata(self, head: RequestHead, writer: asyncio.StreamWriter) -> None:
        if head.query.get("mode") != "updinfo":
            raise IngestError(400, "mode=updinfo is the only mode")
        mount, title = head.query.get("mount", ""), head.query.get("song", "")
        refused = await self._gate.update_metadata(mount, _password(head), title)
        if refused is not None:
            raise IngestError(refused.status, refused.reason)
        body = (
            b'<?xml version="1.0"?>\n<iceresponse><message>Metadata update successful'
            b"</message><return>1</return></iceresponse>\n"
        )
        writer.write(
            b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )


def _password(head: RequestHead) -> str:
    credentials = head.credentials
    if credentials is None:
        raise IngestError(401, "Authentication required")
    return credentials[1]


def _length(head: RequestHead) -> int | None:
    value = head.headers.get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() else None


def _icy_headers(head: RequestHead) -> dict[str, str]:
    """The encoder's `ice-*` headers as the `icy-*` a pulled source sends (bitrate)."""
    headers = {
        f"icy-{name[4:]}": value for name, value in head.headers.items() if name.startswith("ice-")
    }
    info = dict(
        part.partition("=")[::2]
        for part in head.headers.get("ice-audio-info", "").split(";")
        if part
    )
    bitrate = headers.get("icy-bitrate") or info.get("bitrate") or info.get("ice-bitrate")
    if bitrate:
        headers["icy-br"] = bitrate
    return headers


def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    phrase = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        405: "Method Not Allowed",
        415: "Unsupported Media Type",
    }.get(status, "Error")
    body = f"{reason}\n".encode()
    extra = f"WWW-Authenticate: {_REALM}\r\n" if status == 401 else ""
    with contextlib.suppress(OSError):
        writer.write(
            f"HTTP/1.0 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n{extra}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
