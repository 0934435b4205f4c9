"""The fan-out hub of one live stream.

The source publishes whole audio frames (MP3, or AAC in ADTS: `relay.codec`); once at least
`batch_seconds` of audio is pending, the hub joins them into one chunk and writes it
straight to every listener's transport in one pass (a broadcast), instead of one coroutine
per listener awaiting `write()` — that design is what lets one core serve thousands of
listeners.

A listener never slows the others: its backlog is the transport's write buffer, checked
before each write. Over `backlog_limit` bytes, or no progress for `stall_timeout` seconds,
the listener is aborted and counted as dropped (like Icecast's queue-size).

What is written is one of four variants of the same chunk, each built at most once per
broadcast: plain or with ICY metadata interleaved, raw (HTTP/1.0, close-delimited) or as
one HTTP/1.1 chunk. ICY listeners all start at a stream offset that is a multiple of
`metaint`, so one interleaved variant serves all of them (see `relay.icy.interleave`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from relay.codec import AudioFrame
from relay.icy import encode_metadata, interleave

Variant = tuple[bool, bool]  # (icy, chunked)


def http_chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (RFC 9112 §7.1)."""
    return b"%X\r\n%b\r\n" % (len(data), data)


@dataclass(eq=False, slots=True)
class Listener:
    """One connected listener of the continuous stream: where to write, in which variant,
    and its progress."""

    transport: asyncio.Transport
    icy: bool
    chunked: bool
    done: asyncio.Future[str]
    bytes_sent: int = 0
    last_buffered: int = 0
    last_write: int = 0
    progress_at: float = 0.0

    @property
    def variant(self) -> Variant:
        return (self.icy, self.chunked)

    def finish(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_result(reason)


@dataclass(slots=True)
class HubCounters:
    """Plain integers read by the metrics collector at scrape time (no hot-path cost)."""

    dropped: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    frames_in: int = 0


@dataclass(slots=True)
class _History:
    """The last `limit` bytes of the stream with their global offsets, and frame starts."""

    limit: int
    data: bytearray = field(default_factory=bytearray)
    start: int = 0  # global offset of data[0]
    frame_starts: deque[int] = field(default_factory=deque)

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def append(self, chunk: bytes, frame_offsets: Sequence[int]) -> None:
        self.frame_starts.extend(frame_offsets)
        self.data += chunk
        excess = len(self.data) - self.limit
        if excess > 0:
            del self.data[:excess]
            self.start += excess
            while self.frame_starts and self.frame_starts[0] < self.start:
                self.frame_starts.popleft()

    def since(self, offset: int) -> bytes:
        return bytes(self.data[offset - self.start :])

    def clear(self) -> None:
        """Forget the bytes kept; offsets go on from where they were."""
        self.start = self.end
        self.data.clear()
        self.frame_starts.clear()


class StreamHub:
    """Shared buffer and broadcast for one stream. Not thread-safe: event loop only."""

    def __init__(
        self,
        *,
        metaint: int = 16_000,
        burst_bytes: int = 64 * 1024,
        backlog_limit: int = 512 * 1024,
        stall_timeout: float = 30.0,
        batch_seconds: float = 0.1,
        history_bytes: int = 256 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if history_bytes < burst_bytes + metaint:
            raise ValueError("history_bytes must hold a burst plus one metadata interval")
        self.metaint = metaint
        self.burst_bytes = burst_bytes
        self.backlog_limit = backlog_limit
        self.stall_timeout = stall_timeout
        self.batch_seconds = batch_seconds
        self.counters = HubCounters()
        self._clock = clock
        self._history = _History(history_bytes)
        self._pending: list[AudioFrame] = []
        self._pending_seconds = 0.0
        self._listeners: set[Listener] = set()
        self._icy_block = encode_metadata(None)
        self._closed: str | None = None  # why the hub takes no more listeners

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    @property
    def offset(self) -> int:
        """Global byte offset of the next byte the hub will broadcast."""
        return self._history.end

    def set_metadata(self, fields: dict[str, str] | None) -> None:
        """What ICY listeners see from the next metadata interval on."""
        self._icy_block = encode_metadata(fields)

    def publish(self, frames: Sequence[AudioFrame]) -> None:
        """Queue frames from the source; broadcast once a batch's worth is pending."""
        for frame in frames:
            self._pending.append(frame)
            self._pending_seconds += frame.duration
        if self._pending and self._pending_seconds >= self.batch_seconds:
            self.flush()

    def flush(self) -> None:
        """Broadcast whatever is pending now (also used when the source goes away)."""
        if not self._pending:
            return
        offsets, position = [], self._history.end
        for frame in self._pending:
            offsets.append(position)
            position += len(frame.data)
        chunk = b"".join(frame.data for frame in self._pending)
        self.counters.frames_in += len(self._pending)
        self.counters.bytes_in += len(chunk)
        self._pending.clear()
        self._pending_seconds = 0.0
        start = self._history.end
        self._history.append(chunk, offsets)
        self._broadcast(chunk, start)

    def _broadcast(self, chunk: bytes, start: int) -> None:
        variants: dict[Variant, bytes] = {}
        now = self._clock()
        for listener in tuple(self._listeners):
            transport = listener.transport
            if transport.is_closing():
                self._remove(listener, "disconnected")
                continue
            buffered = transport.get_write_buffer_size()
            if listener.last_buffered + listener.last_write > buffered:
                listener.progress_at = now
            if buffered > self.backlog_limit or now - listener.progress_at > self.stall_timeout:
                self._drop(listener)
                continue
            data = variants.get(listener.variant)
            if data is None:
                data = variants[listener.variant] = self._render(chunk, start, listener.variant)
            transport.write(data)
            listener.last_buffered = buffered
            listener.last_write = len(data)
            listener.bytes_sent += len(data)
            self.counters.bytes_out += len(data)

    def _render(self, chunk: bytes, start: int, variant: Variant) -> bytes:
        icy, chunked = variant
        data = interleave(chunk, start, self.metaint, self._icy_block) if icy else chunk
        return http_chunk(data) if chunked else data

    def add_listener(self, transport: asyncio.Transport, *, icy: bool, chunked: bool) -> Listener:
        """Register a listener whose response headers are already sent, and write its burst:
        recent audio so the player starts at once, from a frame boundary (plain) or a
        multiple of `metaint` (ICY)."""
        loop = asyncio.get_running_loop()
        listener = Listener(
            transport, icy, chunked, loop.create_future(), progress_at=self._clock()
        )
        if self._closed is not None:  # a request that was under way when the hub closed
            listener.finish(self._closed)
            return listener
        start = self._burst_start(icy)
        if start < self._history.end:
            burst = self._render(self._history.since(start), start, listener.variant)
            transport.write(burst)
            listener.last_write = len(burst)
            listener.bytes_sent += len(burst)
            self.counters.bytes_out += len(burst)
        self._listeners.add(listener)
        return listener

    def _burst_start(self, icy: bool) -> int:
        history = self._history
        wanted = max(history.start, history.end - self.burst_bytes)
        if icy:
            aligned = wanted // self.metaint * self.metaint
            return aligned if aligned >= history.start else aligned + self.metaint
        for offset in history.frame_starts:
            if offset >= wanted:
                return offset
        return history.end

    def remove_listener(self, listener: Listener) -> None:
        self._remove(listener, "removed")

    def end_listener(self, listener: Listener, reason: str) -> None:
        """End one listener's response cleanly (what it was sent is whole audio frames)."""
        self.flush()
        self._remove(listener, reason)

    def _remove(self, listener: Listener, reason: str) -> None:
        self._listeners.discard(listener)
        listener.finish(reason)

    def _drop(self, listener: Listener) -> None:
        self.counters.dropped += 1
        listener.transport.abort()
        self._remove(listener, "dropped")

    def sweep(self) -> None:
        """Forget listeners whose connection closed while no audio was flowing."""
        for listener in tuple(self._listeners):
            if listener.transport.is_closing():
                self._remove(listener, "disconnected")

    def close_listeners(self, reason: str) -> None:
        """End every listener's response (stream stopped, or the source outage outlasted
        the grace period). Their handlers return and aiohttp ends the responses cleanly."""
        self.flush()
        for listener in tuple(self._listeners):
            self._remove(listener, reason)

    def restart(self, reason: str) -> None:
        """The source changed codec: end every listener's response (its `Content-Type`
        names the old codec) and forget the buffered audio, so no burst mixes the two."""
        self.close_listeners(reason)
        self._history.clear()

    def close(self, reason: str) -> None:
        """End every listener's response and finish any that arrive later at once (the
        stream stopped, or the node is shutting down)."""
        self._closed = reason
        self.close_listeners(reason)
