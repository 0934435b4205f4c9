"""The relay's source client (`relay.source.SourceClient`) against fake sources on loopback
that answer with hostile headers, and its supervisor: whatever goes wrong in one session,
the client logs it and reconnects — a stream's relay never stops for good."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import pytest

from relay.mp3 import Frame
from relay.source import ResponseHead, SourceClient, SourceError, parse_response_head
from tests.loopback import response_head
from tests.sources import IcecastSource

#: Latin-1 "²": `str.isdigit()` accepts it, `int()` refuses it.
SUPERSCRIPT_TWO = b"\xb2"


class HostileHeaderSource(IcecastSource):
    """Answers its first `hostile` stream connections with `header: ²` added to the head
    (raw bytes, as a broken or malicious server would send them), then plain MP3 audio;
    later connections normally."""

    def __init__(self, *, header: str, hostile: int = 1, **options: Any) -> None:
        super().__init__(**options)
        self.header = header
        self.hostile = hostile

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        status_line: str,
        headers: list[tuple[str, str]],
        request: Any,
        separator: str = ": ",
    ) -> None:
        if not self.hostile:
            return await super()._stream(writer, status_line, headers, request, separator)
        self.hostile -= 1
        kept = [(n, v) for n, v in headers if n.lower() != self.header]
        head = response_head(status_line, kept, separator)[:-2]
        writer.write(head + self.header.encode() + b": " + SUPERSCRIPT_TWO + b"\r\n\r\n")
        self.connections += 1
        await self._pump(writer, None)


class Recorder:
    """A `SourceSink` that keeps what it gets; `fail_connects` times, `on_connected` raises
    (a stand-in for any bug downstream of the parsers)."""

    def __init__(self, fail_connects: int = 0) -> None:
        self.heads: list[ResponseHead] = []
        self.frames = 0
        self.disconnects: list[str] = []
        self._fail = fail_connects

    def on_connected(self, head: ResponseHead) -> None:
        self.heads.append(head)
        if self._fail:
            self._fail -= 1
            raise RuntimeError("a bug in the sink")

    def on_frames(self, frames: Sequence[Frame]) -> None:
        self.frames += len(frames)

    def on_metadata(self, fields: dict[str, str]) -> None:
        pass

    def on_disconnected(self, reason: str) -> None:
        self.disconnects.append(reason)


async def until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("header", ["icy-metaint", "icy-br"])
async def test_a_non_ascii_digit_in_a_numeric_header_is_ignored(fake_servers, header) -> None:
    source = await fake_servers(HostileHeaderSource, header=header)
    sink = Recorder()
    client = SourceClient(source.stream_url, sink, backoff=(0.05, 0.1), stream_id="s1")
    task = asyncio.create_task(client.run())
    try:
        await until(lambda: sink.frames >= 100)  # ~2.6 s of audio from the first answer
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    head = sink.heads[0]
    assert head.headers[header] == "²"
    assert (head.metaint, head.bitrate_kbps) == (None, None if header == "icy-br" else 128)
    assert client.connects == 1 and sink.disconnects == []  # played on, no reconnect


async def test_an_unexpected_error_is_logged_and_the_client_reconnects(
    fake_servers, caplog: pytest.LogCaptureFixture
) -> None:
    source = await fake_servers(IcecastSource)
    sink = Recorder(fail_connects=2)
    client = SourceClient(source.stream_url, sink, backoff=(0.05, 0.1), stream_id="stream-7")
    caplog.set_level(logging.INFO, logger="relay.source")
    task = asyncio.create_task(client.run())
    try:
        await until(lambda: sink.frames >= 40)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert client.connects == 3 and source.connections == 3
    assert sink.disconnects[:2] == ["unexpected RuntimeError: a bug in the sink"] * 2
    failures = [r for r in caplog.records if r.getMessage() == "relay source failed"]
    assert len(failures) == 2
    assert all(r.stream_id == "stream-7" and r.exc_info for r in failures)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "metaint", "bitrate"),
    [
        (b"ICY 200 OK\r\nicy-metaint:16000\r\nicy-br:128\r\n\r\n", 16000, 128),
        (b"HTTP/1.0 200 OK\r\nicy-metaint: 0\r\nicy-br: 128,128\r\n\r\n", None, 128),
        (b"HTTP/1.0 200 OK\r\nicy-metaint: \xb2\r\nicy-br: \xb9\xb2\xb8\r\n\r\n", None, None),
        (b"HTTP/1.0 200 OK\r\nicy-metaint: -5\r\nicy-br: 1e3\r\n\r\n", None, None),
    ],
)
def test_numeric_headers_take_ascii_digits_only(raw: bytes, metaint, bitrate) -> None:
    head = parse_response_head(raw)
    assert (head.metaint, head.bitrate_kbps) == (metaint, bitrate)


def test_a_status_code_in_other_digits_is_a_bad_status_line() -> None:
    with pytest.raises(SourceError, match="bad status line"):
        parse_response_head(b"HTTP/1.0 \xb200 OK\r\n\r\n")


@pytest.mark.parametrize("stalls", [True, False])
async def test_a_source_that_fails_mid_head_is_hung_up_on_at_once(stalls: bool) -> None:
    """A source that stalls in its response head (the relay gives up after its connect
    timeout, or is stopped) or sends a malformed one: the relay closes the connection then,
    not when its writer is collected (an unclosed writer warns once its loop is closed)."""
    hung_up = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\n" if stalls else b"NOT HTTP\r\n\r\n")
        await writer.drain()
        if not await reader.read():  # EOF: the relay hung up
            hung_up.set()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = Recorder()
    client = SourceClient(
        f"http://127.0.0.1:{port}/live", sink, connect_timeout=0.3, backoff=(30.0, 30.0)
    )
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(hung_up.wait(), 5)
        assert client.connects == 0 and len(sink.disconnects) <= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
        await server.wait_closed()
