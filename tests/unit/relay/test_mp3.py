"""Mp3FrameReader on real MP3 bytes encoded with PyAV (LAME) at test time."""

from __future__ import annotations

import array
import io
import math
import random
import time
from dataclasses import dataclass
from functools import cache

import av
import mutagen.id3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.mp3 import ChannelMode, Frame, FrameHeader, Mp3FrameReader, frames_duration

MAX_FRAME = 1441  # MPEG-1 Layer III 320 kbit/s at 32 kHz, padded


@dataclass(frozen=True)
class Tone:
    rate: int
    layout: str
    kbps: int
    version: float


TONES = {
    "44k-stereo": Tone(44100, "stereo", 128, 1),
    "22k-mono": Tone(22050, "mono", 32, 2),
    "48k-stereo": Tone(48000, "stereo", 192, 1),
    "8k-mono": Tone(8000, "mono", 16, 2.5),
}


@cache
def encode_tone(name: str, id3v2: bool = True, seconds: float = 2.0) -> bytes:
    """A 440 Hz sine as CBR MP3 via libmp3lame; FFmpeg's muxer writes an Info frame first
    and, unless disabled, an ID3v2 tag before it."""
    tone = TONES[name]
    out = io.BytesIO()
    options = {} if id3v2 else {"id3v2_version": "0"}
    with av.open(out, "w", format="mp3", options=options) as container:
        stream = container.add_stream("libmp3lame", rate=tone.rate, layout=tone.layout)
        stream.bit_rate = tone.kbps * 1000
        total, step = int(tone.rate * seconds), 1152
        for start in range(0, total, step):
            n = min(step, total - start)
            wave = array.array(
                "i",
                (
                    int(0.3 * 2**31 * math.sin(2 * math.pi * 440 * (start + i) / tone.rate))
                    for i in range(n)
                ),
            )
            frame = av.AudioFrame(format="s32p", layout=tone.layout, samples=n)
            frame.sample_rate, frame.pts = tone.rate, start
            for plane in frame.planes:
                plane.update(wave.tobytes())
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def read_all(data: bytes, chunks: list[int] | None = None) -> tuple[list[Frame], Mp3FrameReader]:
    """Feed `data` cycling through the chunk sizes (whole at once if None), then flush."""
    reader = Mp3FrameReader()
    frames: list[Frame] = []
    pos, sizes = 0, chunks or [len(data) or 1]
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        frames += reader.feed(data[pos : pos + size])
        pos, i = pos + size, i + 1
    frames += reader.flush()
    return frames, reader


def audio_frames(name: str) -> list[Frame]:
    frames, _ = read_all(encode_tone(name, id3v2=False))
    return [f for f in frames if not f.is_info_frame]


def id3v2_tag(size: int, footer: bool = False) -> bytes:
    """A hand-built ID3v2.4 tag whose payload is full of fake frame syncs."""
    body = (b"\xff\xfb\x90\x64" * (size // 4 + 1))[:size]
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    head = bytes([4, 0, 0x10 if footer else 0]) + syncsafe
    return b"ID3" + head + body + (b"3DI" + head if footer else b"")


def pyav_probe(data: bytes) -> tuple[int, float, int, int, int]:
    """(packets, summed packet duration in s, decoded samples, sample rate, channels)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        packets, duration, samples = 0, 0, 0
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            packets += 1
            duration += packet.duration or 0
            samples += sum(f.samples for f in packet.decode())
        tb = stream.time_base
        assert tb is not None
        return packets, float(duration * tb), samples, stream.rate, stream.codec_context.channels


def encoder_delay_padding(info: Frame) -> tuple[int, int]:
    """LAME tag: 12-bit encoder delay and padding, 141 bytes after "Xing"/"Info"."""
    tag = info.data.find(b"Info")
    raw = info.data[tag + 141 : tag + 144]
    return raw[0] << 4 | raw[1] >> 4, (raw[1] & 0x0F) << 8 | raw[2]


# Header golden tests -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xff\xfb\x90\x64", (1, 128, 44100, ChannelMode.JOINT_STEREO, 2, False, 1152, 417)),
        (b"\xff\xfb\x92\x64", (1, 128, 44100, ChannelMode.JOINT_STEREO, 2, True, 1152, 418)),
        (b"\xff\xfb\xe8\xc0", (1, 320, 32000, ChannelMode.MONO, 1, False, 1152, 1440)),
        (b"\xff\xfb\x94\x00", (1, 128, 48000, ChannelMode.STEREO, 2, False, 1152, 384)),
        (b"\xff\xf3\x70\xc0", (2, 56, 22050, ChannelMode.MONO, 1, False, 576, 182)),
        (b"\xff\xf3\x42\x80", (2, 32, 22050, ChannelMode.DUAL_CHANNEL, 2, True, 576, 105)),
        (b"\xff\xe3\x38\xc4", (2.5, 24, 8000, ChannelMode.MONO, 1, False, 576, 216)),
    ],
)
def test_header_fields(raw: bytes, expected: tuple[object, ...]) -> None:
    h = FrameHeader.parse(raw)
    assert h is not None
    got = (h.version, h.bitrate_kbps, h.sample_rate, h.channel_mode, h.channels, h.padding)
    assert (*got, h.samples_per_frame, h.frame_length) == expected
    assert h.layer == 3
    assert h.duration == h.samples_per_frame / h.sample_rate


def test_header_crc_flag() -> None:
    protected, plain = (
        FrameHeader.parse(b"\xff\xfa\x90\x64"),
        FrameHeader.parse(b"\xff\xfb\x90\x64"),
    )
    assert protected is not None and plain is not None
    assert protected.protected and not plain.protected


@pytest.mark.parametrize(
    "raw",
    [
        b"\xfe\xfb\x90\x64",  # bad sync
        b"\xff\x1b\x90\x64",  # bad sync (second byte)
        b"\xff\xeb\x90\x64",  # reserved version
        b"\xff\xfd\x90\x64",  # Layer II
        b"\xff\xff\x90\x64",  # Layer I
        b"\xff\xf9\x90\x64",  # reserved layer
        b"\xff\xfb\x00\x64",  # free format
        b"\xff\xfb\xf0\x64",  # bitrate index 15
        b"\xff\xfb\x9c\x64",  # sample-rate index 3
        b"\xff\xfb\x90\x66",  # emphasis 2 (reserved)
        b"\xff\xfb\x90",  # too short
    ],
)
def test_header_rejects_invalid(raw: bytes) -> None:
    assert FrameHeader.parse(raw) is None


@pytest.mark.parametrize(
    ("raw", "tag", "offset", "expected"),
    [
        (b"\xff\xfb\x90\x64", b"Xing", 36, True),  # MPEG-1 stereo: 32 bytes side info
        (b"\xff\xfb\x90\xc4", b"Info", 21, True),  # MPEG-1 mono: 17
        (b"\xff\xf3\x70\x44", b"Info", 21, True),  # MPEG-2 stereo: 17
        (b"\xff\xf3\x70\xc4", b"Xing", 13, True),  # MPEG-2 mono: 9
        (b"\xff\xfa\x90\x64", b"Xing", 38, True),  # CRC-protected: after the CRC too
        (b"\xff\xf3\x70\xc4", b"VBRI", 36, True),  # Fraunhofer: fixed offset
        (b"\xff\xfb\x90\x64", b"Xing", 21, False),  # wrong offset for stereo
        (b"\xff\xfb\x90\x64", b"LAME", 36, False),
    ],
)
def test_info_frame_detection(raw: bytes, tag: bytes, offset: int, expected: bool) -> None:
    header = FrameHeader.parse(raw)
    assert header is not None
    body = bytearray(raw + bytes(header.frame_length - 4))
    body[offset : offset + 4] = tag
    assert Frame(header, bytes(body)).is_info_frame is expected


# Real files -----------------------------------------------------------------------------


@pytest.mark.parametrize("id3v2", [True, False], ids=["id3v2", "bare"])
@pytest.mark.parametrize("name", list(TONES))
def test_frames_match_pyav(name: str, id3v2: bool) -> None:
    data = encode_tone(name, id3v2)
    frames, reader = read_all(data)
    packets, packet_seconds, decoded, rate, channels = pyav_probe(data)

    info, audio = frames[0], frames[1:]
    assert info.is_info_frame and not any(f.is_info_frame for f in audio)
    assert len(audio) == packets
    assert abs(frames_duration(frames) - packet_seconds) < audio[0].duration
    # Exact gapless check: PyAV trims the encoder delay and padding recorded in the LAME tag.
    delay, padding = encoder_delay_padding(info)
    assert sum(f.header.samples_per_frame for f in audio) - delay - padding == decoded
    tone = TONES[name]
    assert {(f.header.version, f.header.sample_rate, f.header.channels) for f in frames} == {
        (tone.version, rate, channels)
    }
    assert {f.header.bitrate_kbps for f in audio} == {tone.kbps}
    # Every byte is accounted for: frames plus the ID3v2 tag, nothing skipped or held back.
    assert sum(len(f.data) for f in frames) + reader.tag_bytes == len(data)
    assert (reader.tag_bytes > 0) == id3v2
    assert reader.skipped_bytes == 0 and reader.buffered == 0
    assert reader.frames == len(frames)
    assert all(len(f.data) == f.header.frame_length for f in frames)


@pytest.mark.parametrize("chunk", [1, 7, 417, 4096])
@pytest.mark.parametrize("name", ["44k-stereo", "22k-mono"])
def test_chunking_does_not_change_frames(name: str, chunk: int) -> None:
    data = encode_tone(name)
    whole, _ = read_all(data)
    chunked, reader = read_all(data, [chunk])
    assert chunked == whole
    assert reader.skipped_bytes == 0


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 1500), min_size=1, max_size=30), garbage=st.binary())
def test_random_chunking_with_garbage(sizes: list[int], garbage: bytes) -> None:
    data = garbage[:50] + encode_tone("44k-stereo") + garbage
    whole, r1 = read_all(data)
    chunked, r2 = read_all(data, sizes)
    assert chunked == whole
    assert (r1.skipped_bytes, r1.tag_bytes, r1.frames) == (
        r2.skipped_bytes,
        r2.tag_bytes,
        r2.frames,
    )


def test_garbage_before_and_between_frames_is_skipped() -> None:
    rng = random.Random(7)
    frames = audio_frames("44k-stereo")
    fake = b"\xff\xfb\x90\x64"  # a valid-looking header not followed by a second one
    before = rng.randbytes(300) + fake + rng.randbytes(200)
    between = b"\x00" + rng.randbytes(100) + fake + rng.randbytes(37)
    head, tail = frames[:10], frames[10:]
    data = before + b"".join(f.data for f in head) + between + b"".join(f.data for f in tail)

    for chunks in (None, [1], [333]):
        got, reader = read_all(data, chunks)
        assert got == frames
        assert reader.skipped_bytes == len(before) + len(between)


def test_id3v2_tags_anywhere_are_skipped_by_counting() -> None:
    frames = audio_frames("22k-mono")
    small, big = id3v2_tag(600, footer=True), id3v2_tag(1_000_000)
    pieces = [f.data for f in frames]
    data = b"".join([small, *pieces[:5], big, *pieces[5:9], small, *pieces[9:]])
    reader = Mp3FrameReader()
    got: list[Frame] = []
    peak = 0
    for pos in range(0, len(data), 4096):
        got += reader.feed(data[pos : pos + 4096])
        peak = max(peak, reader.buffered)
    got += reader.flush()
    assert got == frames
    assert reader.tag_bytes == 2 * len(small) + len(big)
    assert reader.skipped_bytes == 0
    assert peak <= 2 * MAX_FRAME + 10


def test_real_id3v2_tag_with_cover_art_is_skipped() -> None:
    frames = audio_frames("48k-stereo")
    out = io.BytesIO(b"".join(f.data for f in frames))
    tags = mutagen.id3.ID3()
    tags.add(mutagen.id3.TIT2(encoding=3, text="Déjà vu"))
    cover = random.Random(3).randbytes(200_000)  # plenty of 0xFF bytes
    tags.add(mutagen.id3.APIC(encoding=3, mime="image/jpeg", type=3, desc="c", data=cover))
    tags.save(out, v2_version=4)
    got, reader = read_all(out.getvalue(), [1000])
    assert got == frames
    assert reader.skipped_bytes == 0
    assert reader.tag_bytes == len(out.getvalue()) - sum(len(f.data) for f in frames)


def test_id3v1_tags_between_and_after_files_are_dropped() -> None:
    first, second = encode_tone("44k-stereo"), encode_tone("48k-stereo", id3v2=False)
    v1 = b"TAG" + b"Title".ljust(30, b"\x00") + b"\xff\xfb\x90\x64" * 23 + b"\x00" * 3
    assert len(v1) == 128
    data = first + v1 + second + v1
    expected = read_all(first)[0] + read_all(second)[0]
    for chunks in (None, [1], [100]):
        got, reader = read_all(data, chunks)
        assert got == expected
        assert reader.skipped_bytes == 0 and reader.buffered == 0


def test_sample_rate_change_resyncs_without_loss() -> None:
    first, second = encode_tone("44k-stereo", False), encode_tone("22k-mono", False)
    got, reader = read_all(first + second, [4096])
    assert got == read_all(first)[0] + read_all(second)[0]
    assert reader.skipped_bytes == 0


def test_truncated_last_frame_is_not_emitted() -> None:
    frames = audio_frames("44k-stereo")
    data = b"".join(f.data for f in frames)[:-100]
    reader = Mp3FrameReader()
    assert reader.feed(data) == frames[:-1]
    assert reader.buffered == len(frames[-1].data) - 100
    assert reader.flush() == []
    assert reader.skipped_bytes == len(frames[-1].data) - 100


def test_flush_returns_a_lone_frame_at_end_of_file() -> None:
    frame = audio_frames("44k-stereo")[3]
    reader = Mp3FrameReader()
    # Out of sync, one header cannot be confirmed until the stream ends.
    assert reader.feed(b"junk" + frame.data) == []
    assert reader.flush() == [frame]
    assert (reader.skipped_bytes, reader.frames) == (4, 1)


def test_throughput_10mb() -> None:
    frames = audio_frames("44k-stereo")
    body = b"".join(f.data for f in frames)
    data = body * (10_000_000 // len(body) + 1)
    reader = Mp3FrameReader()
    count = 0
    start = time.perf_counter()
    for pos in range(0, len(data), 4096):
        count += len(reader.feed(data[pos : pos + 4096]))
    elapsed = time.perf_counter() - start
    print(f"Mp3FrameReader: {len(data) / elapsed / 1e6:.1f} MB/s ({count} frames)")
    assert count == len(data) // len(body) * len(frames)
    assert elapsed < 5
