"""Live HLS of one stream (`hls.live.LiveHls`) fed real MP3 frames (libmp3lame via PyAV),
its segments decoded back with libavformat."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import av
import pytest

from hls.live import LiveHls
from hls.packager import DEFAULT_START_PTS, TS_CLOCK
from hls.playlist import parse_media_playlist, render_media_playlist
from relay.mp3 import Frame, Mp3FrameReader
from tests.audio import make_mp3

TARGET = 2  # seconds


def frames_of(seconds: float, sample_rate: int, channels: int = 2) -> list[Frame]:
    reader = Mp3FrameReader()
    data = make_mp3(seconds, sample_rate=sample_rate, channels=channels)
    return [f for f in reader.feed(data) + reader.flush() if not f.is_info_frame]


def packets(ts: bytes) -> list[tuple[int, int, int]]:
    """(pts, duration, sample rate) of every audio packet of a segment."""
    with av.open(io.BytesIO(ts), format="mpegts") as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        return [(p.pts, p.duration, rate) for p in container.demux(stream) if p.size]


def decode_all(ts: bytes) -> list[tuple[int, int]]:
    """(sample rate, samples) of every decoded audio frame."""
    with av.open(io.BytesIO(ts), format="mpegts") as container:
        return [(f.sample_rate, f.samples) for f in container.decode(audio=0)]


async def published(live: LiveHls, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while live.stats.segments < count:
        assert time.monotonic() < deadline, f"only {live.stats.segments} segments published"
        await asyncio.sleep(0.02)


@pytest.fixture
async def live() -> Any:
    # Frames arrive here all at once, not in real time: let every cut wait for the muxer.
    hls = LiveHls(TARGET, lambda: datetime.now(UTC), window_size=20, max_pending=10)
    hls.start()
    yield hls
    await hls.stop()


async def test_a_new_sample_rate_starts_a_new_timeline_at_the_old_next_pts(live: LiveHls) -> None:
    before, after = frames_of(3.0, 44_100), frames_of(5.0, 48_000)
    live.on_frames(before, False)
    live.on_frames(after, False)  # a source reconnected at 48 kHz, no outage signalled
    # 3 s at 44.1 kHz: one full segment, then the rest closed by the format change; 5 s at
    # 48 kHz: two full segments (the last partial one stays open, waiting for frames).
    await published(live, 4)

    segments = live.window.entries
    # The first segment of a run is marked too (its timeline starts afresh).
    assert [s.segment.discontinuity for s in segments] == [True, False, True, False]
    text = render_media_playlist(live.playlist(lambda seq: f"{seq}.ts"))
    assert text.count("#EXT-X-DISCONTINUITY\n") == 2
    assert "#EXT-X-TARGETDURATION:2" in text
    assert all(s.segment.duration <= TARGET for s in segments)

    timeline = [packets(s.payload) for s in segments]
    assert {p[2] for p in timeline[0] + timeline[1]} == {44_100}
    assert {p[2] for p in timeline[2] + timeline[3]} == {48_000}
    assert timeline[0][0][0] == DEFAULT_START_PTS
    for previous, current in itertools.pairwise(timeline):
        end = previous[-1][0] + previous[-1][1]
        # Timestamps run on across the change: no gap, no overlap (±1 tick of rounding).
        assert abs(current[0][0] - end) <= 1, (end, current[0][0])

    decoded = await asyncio.to_thread(decode_all, b"".join(s.payload for s in segments))
    rates = [rate for rate, _ in decoded]
    assert rates == sorted(rates, key=lambda r: r == 48_000)  # 44.1 kHz, then 48 kHz only
    seconds = sum(samples / rate for rate, samples in decoded)
    expected = len(before) * 1152 / 44_100 + 2 * 83 * 1152 / 48_000
    assert abs(seconds - expected) < 0.1, (seconds, expected)
    assert (sum(s.segment.duration for s in segments) - expected) < 0.01


async def test_a_channel_change_is_a_discontinuity_too(live: LiveHls) -> None:
    live.on_frames(frames_of(1.0, 44_100, channels=2), False)
    live.on_frames(frames_of(3.0, 44_100, channels=1), False)
    await published(live, 2)
    first, second = live.window.entries[:2]
    assert (first.segment.discontinuity, second.segment.discontinuity) == (True, True)
    end = packets(first.payload)[-1]
    assert packets(second.payload)[0][0] == end[0] + end[1]
    assert abs(first.segment.duration * TS_CLOCK - (end[0] + end[1] - DEFAULT_START_PTS)) <= 1


async def test_a_restarted_run_never_reuses_segment_numbers() -> None:
    """A relay that starts again (deploy, node restart, disable/enable) has a new LiveHls.
    Its segment URLs are cached as immutable, so they must not be the previous run's, and
    MEDIA-SEQUENCE and DISCONTINUITY-SEQUENCE must not go back (RFC 8216 §6.2.1) — even
    when a title change every second cuts segments far shorter than the target, so a run
    uses more numbers than `now // target` advances."""
    now = datetime(2024, 5, 1, 20, 0, tzinfo=UTC)
    frames = frames_of(12.0, 44_100)
    runs = []
    for _run in range(2):
        live = LiveHls(6, lambda at=now: at, window_size=50, max_pending=50)
        live.start()
        try:
            for n, start in enumerate(range(0, len(frames), 39)):  # ~1.02 s per title
                live.on_title(f"Track {n}")
                live.on_frames(frames[start : start + 39], False)
            await published(live, 10)
            text = render_media_playlist(live.playlist(lambda seq: f"{seq}.ts"))
        finally:
            await live.stop()
        runs.append((live.window.entries, parse_media_playlist(text)))
        now += timedelta(seconds=12)  # the wall time that much audio takes to arrive

    (first, first_playlist), (second, second_playlist) = runs
    numbers = [[entry.sequence for entry in run] for run in (first, second)]
    for run in numbers:
        assert run == list(range(run[0], run[0] + len(run)))  # contiguous within a run
    assert len(numbers[0]) >= 10 and numbers[1][0] > numbers[0][-1]  # no URL reused
    assert second_playlist.media_sequence > first_playlist.media_sequence
    assert second_playlist.discontinuity_sequence > first_playlist.discontinuity_sequence
    for playlist in (first_playlist, second_playlist):
        # §6.2.2 bookkeeping stays sane: counted discontinuities never pass the segments.
        assert playlist.discontinuity_sequence <= playlist.media_sequence
        assert playlist.segments[0].discontinuity  # each run's timeline starts afresh
        assert not any(s.discontinuity for s in playlist.segments[1:])
