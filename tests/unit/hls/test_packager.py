"""MP3 → MPEG-TS packaging: real MP3 from libmp3lame, decoded back with libavcodec, and
played as HLS over HTTP by libavformat's HLS client."""

from __future__ import annotations

import array
import asyncio
import io
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp import web
from mutagen.id3 import ID3

from hls.id3 import id3_title_tag
from hls.packager import DEFAULT_START_PTS, TS_CLOCK, TsSegmenter
from hls.playlist import MediaPlaylist, Segment, render_media_playlist

SAMPLE_RATE = 44_100
SAMPLES_PER_FRAME = 1152  # MPEG-1 Layer III
FRAMES_PER_SEGMENT = 230  # 6.008 s
SEGMENTS = 5
ONE_SAMPLE = TS_CLOCK / SAMPLE_RATE  # in 90 kHz ticks

# ISO/IEC 11172-3 / 13818-3 Layer III header tables, just enough to cut a file into frames.
_BITRATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def split_frames(data: bytes) -> list[bytes]:
    """Cuts a headerless Layer III stream (no ID3, no Xing) into frames."""
    frames = []
    pos = 0
    while pos + 4 <= len(data):
        b1, b2 = data[pos + 1], data[pos + 2]
        assert data[pos] == 0xFF and b1 & 0xE0 == 0xE0 and (b1 >> 1) & 3 == 1, pos
        version_bits = (b1 >> 3) & 3
        bitrate = _BITRATES[1 if version_bits == 3 else 2][b2 >> 4] * 1000
        sample_rate = _RATES[version_bits][(b2 >> 2) & 3]
        coefficient = 144 if version_bits == 3 else 72
        length = coefficient * bitrate // sample_rate + ((b2 >> 1) & 1)
        frames.append(data[pos : pos + length])
        pos += length
    assert pos == len(data)
    return frames


def encode_mp3(seconds: int, bit_rate: int = 128_000) -> bytes:
    """A stereo tone that changes pitch every second, as plain MP3 frames."""
    out = io.BytesIO()
    options = {"write_xing": "0", "id3v2_version": "0"}
    with av.open(out, "w", format="mp3", options=options) as container:
        stream = container.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="stereo")
        stream.bit_rate = bit_rate
        for second in range(seconds):
            step = 2 * math.pi * (220 + 20 * second) / SAMPLE_RATE
            pcm = array.array("h")
            for n in range(SAMPLE_RATE):
                value = int(8000 * math.sin(step * n))
                pcm.extend((value, value))
            frame = av.AudioFrame(format="s16", layout="stereo", samples=SAMPLE_RATE)
            frame.planes[0].update(pcm.tobytes())
            frame.sample_rate = SAMPLE_RATE
            frame.pts = second * SAMPLE_RATE
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


@dataclass
class Packaged:
    frames: list[bytes]  # all the MP3 frames, in order
    segments: list[bytes]
    cpu_seconds: float
    tag: bytes


@pytest.fixture(scope="module")
def packaged() -> Packaged:
    frames = split_frames(encode_mp3(31))[: SEGMENTS * FRAMES_PER_SEGMENT]
    assert len(frames) == SEGMENTS * FRAMES_PER_SEGMENT
    tag = id3_title_tag("DJ Nova – Night Drive")
    segmenter = TsSegmenter(SAMPLE_RATE, SAMPLES_PER_FRAME)
    segments = []
    started = time.process_time()
    for n in range(SEGMENTS):
        chunk = frames[n * FRAMES_PER_SEGMENT : (n + 1) * FRAMES_PER_SEGMENT]
        segments.append(segmenter.package(chunk, id3=tag if n == 2 else None))
    return Packaged(frames, segments, time.process_time() - started, tag)


def decode(ts: bytes) -> Iterator[av.AudioFrame]:
    with av.open(io.BytesIO(ts), format="mpegts") as container:
        yield from container.decode(audio=0)


@pytest.fixture
def libav_errors() -> Iterator[list[Any]]:
    """libav log lines at ERROR or worse logged while the test runs."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs:
            yield logs
    finally:
        av.logging.set_level(previous)


def test_each_segment_decodes_on_its_own(packaged: Packaged) -> None:
    decoded = [sum(f.samples for f in decode(ts)) for ts in packaged.segments]
    expected = len(packaged.frames) * SAMPLES_PER_FRAME
    print(f"\nsamples per segment: {decoded}")
    assert abs(sum(decoded) - expected) <= SAMPLES_PER_FRAME
    for n, ts in enumerate(packaged.segments):
        # RFC 8216 §3.2: PAT (PID 0) then PMT (PID 0x1000) open every segment.
        assert (ts[:3], ts[188:191]) == (b"\x47\x40\x00", b"\x47\x50\x00"), n
        samples_before = n * FRAMES_PER_SEGMENT * SAMPLES_PER_FRAME
        assert next(decode(ts)).pts == DEFAULT_START_PTS + samples_before * TS_CLOCK // SAMPLE_RATE


def test_concatenated_segments_play_gaplessly(packaged: Packaged, libav_errors: list[Any]) -> None:
    frames = list(decode(b"".join(packaged.segments)))
    assert sum(f.samples for f in frames) == len(packaged.frames) * SAMPLES_PER_FRAME
    worst = 0.0
    for previous, frame in itertools.pairwise(frames):
        assert frame.pts > previous.pts
        expected = previous.pts + previous.samples * ONE_SAMPLE
        worst = max(worst, abs(frame.pts - expected))
    print(f"\nworst PTS gap/overlap between frames: {worst / ONE_SAMPLE:.2f} samples")
    assert worst <= ONE_SAMPLE
    assert libav_errors == []


def test_ts_overhead_stays_under_twelve_percent(packaged: Packaged) -> None:
    ratio = sum(map(len, packaged.segments)) / sum(map(len, packaged.frames))
    print(f"\nTS bytes / MP3 bytes at 128 kbit/s: {ratio:.4f}")
    assert ratio <= 1.12


def test_segment_carries_the_title_as_timed_id3(packaged: Packaged) -> None:
    # Streams must not outlive their container: PyAV crashes on a closed one's streams.
    with av.open(io.BytesIO(packaged.segments[2]), format="mpegts") as container:
        (data,) = container.streams.data
        assert (data.id, data.type) == (0x101, "data")  # PID 0x101, stream_type 0x15
        assert data.codec_context is None and "timed_id3" in repr(data)
        packets = [(bytes(p), p.pts) for p in container.demux(data) if p.size]
    start = DEFAULT_START_PTS + 2 * FRAMES_PER_SEGMENT * SAMPLES_PER_FRAME * TS_CLOCK // SAMPLE_RATE
    assert packets == [(packaged.tag, start)]
    assert str(ID3(io.BytesIO(packaged.tag))["TIT2"]) == "DJ Nova – Night Drive"
    with av.open(io.BytesIO(packaged.segments[1]), format="mpegts") as container:
        (data,) = container.streams.data  # declared in every PMT, so the PMT never changes
        assert [p for p in container.demux(data) if p.size] == []


def test_stream_copy_cpu_cost(packaged: Packaged) -> None:
    per_frame = packaged.cpu_seconds / len(packaged.frames) * 1e6
    frames_per_second = SAMPLE_RATE / SAMPLES_PER_FRAME
    print(
        f"\npackaging: {per_frame:.2f} µs CPU per MP3 frame "
        f"({per_frame * frames_per_second / 1e4:.4f} % of a core per 44.1 kHz stream)"
    )


def test_timestamps_never_drift() -> None:
    segmenter = TsSegmenter(SAMPLE_RATE, SAMPLES_PER_FRAME, timed_id3=False)
    frame = split_frames(encode_mp3(1))[5]
    for _ in range(300):  # one frame per segment: 300 roundings of 2351.02 ticks
        segmenter.package([frame])
    assert segmenter.next_pts == DEFAULT_START_PTS + 300 * 1152 * TS_CLOCK // SAMPLE_RATE


def test_discontinuity_flags_the_first_packet_of_each_pid(packaged: Packaged) -> None:
    segmenter = TsSegmenter(SAMPLE_RATE, SAMPLES_PER_FRAME, start_pts=900_000)
    chunk = packaged.frames[:40]
    for discontinuity in (False, True):
        ts = segmenter.package(chunk, discontinuity=discontinuity)
        flagged = set()
        for offset in range(0, len(ts), 188):
            packet = ts[offset : offset + 188]
            has_adaptation = packet[3] & 0x20 and packet[4] > 0
            if has_adaptation and packet[5] & 0x80:  # discontinuity_indicator
                flagged.add((packet[1] & 0x1F) << 8 | packet[2])
        pat, pmt, audio = 0x0000, 0x1000, 0x0100
        assert flagged == ({pat, pmt, audio} if discontinuity else set())


def test_packager_refuses_what_is_not_a_segment_of_frames(packaged: Packaged) -> None:
    segmenter = TsSegmenter(SAMPLE_RATE, SAMPLES_PER_FRAME)
    with pytest.raises(ValueError):
        segmenter.package([])
    with pytest.raises(ValueError):
        segmenter.package([b"ICY 200 OK\r\n"])
    with pytest.raises(ValueError):
        TsSegmenter(SAMPLE_RATE, SAMPLES_PER_FRAME, timed_id3=False).package(
            packaged.frames[:2], id3=packaged.tag
        )
    assert segmenter.next_pts == DEFAULT_START_PTS


def test_id3_title_tag_is_id3v24_utf8() -> None:
    tag = id3_title_tag("Beyoncé — Halo\x00\n")
    assert tag[:5] == b"ID3\x04\x00"
    frame = ID3(io.BytesIO(tag))["TIT2"]
    assert (frame.encoding, frame.text) == (3, ["Beyoncé — Halo\n"])


async def test_hls_client_plays_the_segments_over_http(
    packaged: Packaged, aiohttp_server: Any, tmp_path: Path
) -> None:
    duration = FRAMES_PER_SEGMENT * SAMPLES_PER_FRAME / SAMPLE_RATE
    for n, ts in enumerate(packaged.segments):
        (tmp_path / f"{n}.ts").write_bytes(ts)
    playlist = MediaPlaylist(
        target_duration=math.ceil(duration),
        media_sequence=0,
        segments=[Segment(f"{n}.ts", duration) for n in range(SEGMENTS)],
        playlist_type="VOD",
        endlist=True,
    )
    (tmp_path / "index.m3u8").write_text(render_media_playlist(playlist))
    app = web.Application()
    app.router.add_static("/hls/", tmp_path)
    server = await aiohttp_server(app)
    url = str(server.make_url("/hls/index.m3u8"))

    def play() -> tuple[int, list[int]]:
        with av.open(url, format="hls", timeout=10) as container:
            frames = list(container.decode(audio=0))
        return sum(f.samples for f in frames), [f.pts for f in frames]

    samples, pts = await asyncio.to_thread(play)  # libavformat blocks: keep it off the loop
    played = samples / SAMPLE_RATE
    print(f"\nHLS client played {played:.3f} s of {SEGMENTS * duration:.3f} s")
    assert abs(played - SEGMENTS * duration) <= 0.1
    assert pts == sorted(pts)
