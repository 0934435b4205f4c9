"""The hub's broadcast, burst and slow-listener rules, with in-memory transports."""

from __future__ import annotations

import asyncio

import pytest

from relay.hub import StreamHub, http_chunk
from relay.icy import IcyDemuxer, Metadata
from relay.listener import ACCESS_ENDED, _watch
from relay.mp3 import Frame, FrameHeader

# MPEG-1 Layer III, 128 kbps, 44.1 kHz, stereo, no padding: 417-byte frames of 26.1 ms.
HEADER = bytes([0xFF, 0xFB, 0x90, 0x64])


def frame(fill: int) -> Frame:
    header = FrameHeader.parse(HEADER)
    assert header is not None and header.frame_length == 417
    return Frame(header, HEADER + bytes([fill % 256]) * 413)


class FakeTransport(asyncio.Transport):
    """Records writes; `buffered` simulates what the kernel has not taken yet."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.buffered = 0
        self.closing = False
        self.aborted = False

    def write(self, data) -> None:
        self.written += data
        self.buffered += len(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.aborted = self.closing = True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def publish_seconds(hub: StreamHub, seconds: float, start: int = 0) -> int:
    count = round(seconds / 0.0261224)
    hub.publish([frame(start + i) for i in range(count)])
    hub.flush()
    return count


async def test_broadcast_reaches_every_listener_identically():
    hub = StreamHub(batch_seconds=0.1)
    transports = [FakeTransport() for _ in range(3)]
    for t in transports:
        hub.add_listener(t, icy=False, chunked=False)
    publish_seconds(hub, 1.0)
    assert transports[0].written == transports[1].written == transports[2].written
    assert len(transports[0].written) == hub.offset


async def test_batches_hold_at_least_batch_seconds_of_audio():
    hub = StreamHub(batch_seconds=0.1)
    t = FakeTransport()
    hub.add_listener(t, icy=False, chunked=True)
    hub.publish([frame(0), frame(1), frame(2)])  # 78 ms: not yet
    assert t.written == b""
    hub.publish([frame(3)])  # 104 ms: one chunk of four frames
    assert bytes(t.written) == http_chunk(b"".join(frame(i).data for i in range(4)))


async def test_burst_starts_on_a_frame_boundary_and_is_about_burst_bytes():
    hub = StreamHub(burst_bytes=64 * 1024)
    publish_seconds(hub, 10.0)
    t = FakeTransport()
    hub.add_listener(t, icy=False, chunked=False)
    assert 64 * 1024 - 417 < len(t.written) <= 64 * 1024
    assert bytes(t.written[:4]) == HEADER and len(t.written) % 417 == 0


async def test_icy_listeners_get_titles_every_metaint_bytes_from_their_start():
    hub = StreamHub(metaint=8192, burst_bytes=20_000)
    publish_seconds(hub, 3.0)
    hub.set_metadata({"StreamTitle": "Artist - Song"})
    t = FakeTransport()
    hub.add_listener(t, icy=True, chunked=False)
    publish_seconds(hub, 3.0, start=500)
    events = IcyDemuxer(8192).feed(bytes(t.written))
    titles = [e.title for e in events if isinstance(e, Metadata)]
    assert titles and set(titles) == {"Artist - Song"}
    audio = b"".join(e.data for e in events if not isinstance(e, Metadata))
    plain = FakeTransport()
    hub.add_listener(plain, icy=False, chunked=False)
    assert audio.endswith(bytes(plain.written[-4096:]))


async def test_slow_listener_is_dropped_and_others_keep_full_rate():
    clock = Clock()
    hub = StreamHub(backlog_limit=100_000, clock=clock)
    slow, fast = FakeTransport(), FakeTransport()
    hub.add_listener(slow, icy=False, chunked=False)
    fast_listener = hub.add_listener(fast, icy=False, chunked=False)
    for second in range(20):
        clock.now = second
        publish_seconds(hub, 1.0, start=second * 40)
        fast.buffered = 0  # a healthy client drains everything
    assert slow.aborted and hub.counters.dropped == 1
    assert not fast.aborted and hub.listeners == 1
    assert fast_listener.bytes_sent == hub.offset


async def test_stalled_listener_is_dropped_after_stall_timeout():
    clock = Clock()
    hub = StreamHub(backlog_limit=10**9, stall_timeout=30.0, clock=clock)
    stuck = FakeTransport()
    hub.add_listener(stuck, icy=False, chunked=False)
    for second in (0, 10, 20, 29):
        clock.now = second
        publish_seconds(hub, 0.2)
    assert not stuck.aborted
    clock.now = 31
    publish_seconds(hub, 0.2)
    assert stuck.aborted


async def test_disconnected_listener_finishes_and_close_ends_all():
    hub = StreamHub()
    gone, staying = FakeTransport(), FakeTransport()
    first = hub.add_listener(gone, icy=False, chunked=False)
    second = hub.add_listener(staying, icy=False, chunked=False)
    gone.closing = True
    hub.sweep()
    assert await first.done == "disconnected"
    hub.close_listeners("stream stopped")
    assert await second.done == "stream stopped" and hub.listeners == 0


async def test_a_closed_hub_finishes_late_listeners_at_once():
    hub = StreamHub()
    publish_seconds(hub, 1.0)
    current = hub.add_listener(FakeTransport(), icy=False, chunked=True)
    hub.close("server shutting down")
    assert await current.done == "server shutting down"
    late = FakeTransport()  # its request was under way when the node began to stop
    listener = hub.add_listener(late, icy=False, chunked=True)
    assert await listener.done == "server shutting down"
    assert hub.listeners == 0 and late.written == b""


def test_history_must_hold_a_burst():
    with pytest.raises(ValueError, match="history_bytes"):
        StreamHub(burst_bytes=300_000)


async def test_a_watched_listener_ends_when_refused_and_not_when_the_check_fails():
    hub = StreamHub()
    answers = iter([True, RuntimeError("database away"), True, False])

    async def recheck() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    listener = hub.add_listener(FakeTransport(), icy=False, chunked=True)
    await asyncio.wait_for(_watch(hub, listener, recheck, 0.01), 5)
    assert await listener.done == ACCESS_ENDED and hub.listeners == 0
    assert next(answers, None) is None  # refused only at the fourth check


async def test_a_codec_change_ends_listeners_and_no_burst_mixes_codecs():
    from relay.adts import AdtsFrameReader
    from tests.audio import make_aac

    hub = StreamHub(batch_seconds=0.1)
    mp3_listener = FakeTransport()
    listener = hub.add_listener(mp3_listener, icy=False, chunked=False)
    publish_seconds(hub, 1.0)
    hub.restart("source changed codec")
    assert listener.done.result() == "source changed codec"
    aac = AdtsFrameReader().feed(make_aac(1.0))
    hub.publish(aac)
    hub.flush()
    newcomer = FakeTransport()
    hub.add_listener(newcomer, icy=False, chunked=False)
    # The burst is AAC only: it starts on an ADTS frame and holds no MP3 frame header.
    assert bytes(newcomer.written[:2]) == b"\xff\xf1"
    assert HEADER not in newcomer.written
    assert bytes(newcomer.written) == b"".join(f.data for f in aac)[-len(newcomer.written) :]
