"""AdtsFrameReader on real ADTS AAC encoded with PyAV (libavcodec's aac, the `adts` muxer)."""

from __future__ import annotations

import random

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.adts import AdtsFrameReader, AdtsHeader, codecs_attribute
from tests.audio import decode, make_aac


@pytest.fixture(scope="module")
def stereo() -> bytes:
    return make_aac(3.0)


def _frames(data: bytes) -> list[bytes]:
    reader = AdtsFrameReader()
    found = [f.data for f in reader.feed(data)]
    found += [f.data for f in reader.flush()]
    return found


def test_reads_every_frame_the_muxer_wrote(stereo: bytes) -> None:
    reader = AdtsFrameReader()
    frames = reader.feed(stereo) + reader.flush()
    assert b"".join(f.data for f in frames) == stereo  # nothing lost, nothing skipped
    assert reader.skipped_bytes == 0
    header = frames[0].header
    assert header.sample_rate == 44_100
    assert header.channels == 2
    assert header.object_type == 2  # AAC-LC
    assert header.samples_per_frame == 1024
    assert codecs_attribute(header) == "mp4a.40.2"
    # The reader's duration matches what a real decoder gets out of the same bytes
    # (within the encoder's priming frame).
    parsed = sum(f.duration for f in frames)
    decoded = decode(stereo).duration
    assert abs(parsed - decoded) <= 2 * 1024 / 44_100
    assert 2.9 < parsed < 3.2


@pytest.mark.parametrize(("rate", "channels"), [(48_000, 1), (22_050, 2), (8_000, 1)])
def test_header_fields_for_other_formats(rate: int, channels: int) -> None:
    data = make_aac(1.0, sample_rate=rate, channels=channels, bitrate=48_000)
    frames = AdtsFrameReader().feed(data)
    assert frames
    assert {(f.header.sample_rate, f.header.channels) for f in frames} == {(rate, channels)}
    assert all(len(f.data) == f.header.frame_length for f in frames)


def test_bitrate_estimate_is_near_the_encoder_setting(stereo: bytes) -> None:
    frames = AdtsFrameReader().feed(stereo)[10:]
    seconds = sum(f.duration for f in frames)
    kbps = sum(len(f.data) for f in frames) * 8 / seconds / 1000
    assert 90 < kbps < 150  # encoded at 128 kbit/s


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=200))
def test_any_chunking_gives_the_same_frames(sizes: list[int]) -> None:
    data = make_aac(1.0)
    reader, out, pos = AdtsFrameReader(), [], 0
    for size in sizes:
        out += [f.data for f in reader.feed(data[pos : pos + size])]
        pos += size
    out += [f.data for f in reader.feed(data[pos:])]
    out += [f.data for f in reader.flush()]
    assert b"".join(out) == data


def test_resyncs_after_garbage_and_decoder_still_plays(stereo: bytes) -> None:
    frames = _frames(stereo)
    rng = random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(700)) + b"\xff\xf1\x00"  # a false sync
    cut = len(frames) // 2
    damaged = b"".join(frames[:cut]) + garbage + b"".join(frames[cut:])
    reader = AdtsFrameReader()
    got = reader.feed(damaged) + reader.flush()
    assert [f.data for f in got] == frames
    assert reader.skipped_bytes == len(garbage)
    assert decode(b"".join(f.data for f in got)).codec == "aac"


def test_a_truncated_frame_mid_stream_costs_at_most_the_next_frame(stereo: bytes) -> None:
    frames = _frames(stereo)
    damaged = b"".join(frames[:5]) + frames[5][:40] + b"".join(frames[6:])
    got = _frames(damaged)
    # In sync one header is trusted (as in relay.mp3): the cut frame swallows the start of
    # the next one, then the reader resyncs on the frame after.
    assert got[:5] == frames[:5]
    assert got[-(len(frames) - 7) :] == frames[7:]


def _protect(frame: bytes) -> bytes:
    """The same frame with protection_absent=0 and a CRC word after the 7-byte header (as
    encoders with error protection write it)."""
    head = bytearray(frame[:7])
    head[1] &= 0xFE
    length = len(frame) + 2
    head[3] = (head[3] & 0xFC) | (length >> 11)
    head[4] = (length >> 3) & 0xFF
    head[5] = ((length & 7) << 5) | (head[5] & 0x1F)
    return bytes(head) + b"\x12\x34" + frame[7:]


def test_crc_protected_frames(stereo: bytes) -> None:
    frames = [_protect(f) for f in _frames(stereo)]
    reader = AdtsFrameReader()
    got = reader.feed(b"junk" + b"".join(frames)) + reader.flush()
    assert [f.data for f in got] == frames
    assert all(f.header.protected and f.header.frame_length == len(f.data) for f in got)
    assert reader.skipped_bytes == 4


def test_rejects_mp3_and_reserved_headers() -> None:
    assert AdtsHeader.parse(b"\xff\xfb\x90\x64\x00\x00\x00") is None  # MPEG-1 Layer III
    assert AdtsHeader.parse(b"\xff\xf1\x7c\x80\x2e\x7f\xfc") is None  # rate index 15
    assert AdtsHeader.parse(b"\xff\xf1\x50\x80\x00\x1f\xfc") is None  # length 0
    assert AdtsHeader.parse(b"\xff\xf1") is None


def test_mp3_bytes_give_no_frames() -> None:
    from tests.audio import make_mp3

    reader = AdtsFrameReader()
    assert reader.feed(make_mp3(1.0)) + reader.flush() == []


def test_adts_frames_mux_into_mpegts_that_decodes_as_aac(stereo: bytes) -> None:
    from hls.packager import TsSegmenter

    frames = _frames(stereo)
    segmenter = TsSegmenter(44_100, 1024, codec="aac")
    ts = segmenter.package(frames)
    decoded = decode(ts, format="mpegts")
    assert decoded.codec == "aac"
    assert abs(decoded.duration - len(frames) * 1024 / 44_100) < 3 * 1024 / 44_100
    with av.open(__import__("io").BytesIO(ts), format="mpegts") as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    # stream_type 0x0F in the PMT (ISO/IEC 13818-1 Table 2-34: ADTS AAC)
    assert b"\x0f\xe1\x00" in ts[188 : 2 * 188]
