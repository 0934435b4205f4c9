"""Estimating an external episode's duration from its first 64 KiB and its size, on real
LAME-encoded files: the Info frame's frame count, a VBRI header, constant-bitrate
arithmetic when there is no count, and ID3v2 tags longer than the window."""

from __future__ import annotations

import pytest

from control.podcasts.duration import WINDOW, estimate_duration, id3v2_end
from relay.mp3 import Mp3FrameReader
from tests.audio import make_mp3

SECONDS = 30.0


def frames_of(data: bytes) -> list[bytes]:
    reader = Mp3FrameReader()
    return [f.data for f in reader.feed(data) + reader.flush()]


def id3_tag(payload_size: int) -> bytes:
    """An ID3v2.4 header announcing `payload_size` bytes (syncsafe), then zero padding."""
    size = bytes((payload_size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + size + bytes(payload_size)


@pytest.mark.parametrize("bitrate", [64_000, 128_000, 192_000])
def test_the_info_frame_counts_the_frames(bitrate):
    data = make_mp3(SECONDS, bitrate=bitrate)
    estimated = estimate_duration(data[:WINDOW], len(data))
    assert estimated == pytest.approx(SECONDS, abs=0.1)
    # The count decides, not the size (which only constant-bitrate arithmetic uses).
    assert estimate_duration(data[:WINDOW], 3 * len(data)) == estimated


def test_without_an_info_frame_the_bitrate_decides():
    frames = frames_of(make_mp3(SECONDS))
    data = b"".join(frames[1:])  # the Info frame dropped: plain CBR frames
    assert estimate_duration(data[:WINDOW], len(data)) == pytest.approx(SECONDS, abs=0.1)


def test_a_vbri_header_counts_the_frames():
    frames = frames_of(make_mp3(SECONDS))
    audio = frames[1:]
    vbri = bytearray(audio[0])
    vbri[36:40] = b"VBRI"
    vbri[40:50] = bytes(10)
    vbri[50:54] = (2 * len(audio)).to_bytes(4, "big")  # as if twice as long
    data = bytes(vbri) + b"".join(audio)
    assert estimate_duration(data[:WINDOW], len(data)) == pytest.approx(2 * SECONDS, abs=0.1)


def test_a_leading_id3_tag_is_skipped():
    data = make_mp3(SECONDS, id3_title="Episode 12")
    assert id3v2_end(data) is not None
    assert estimate_duration(data[:WINDOW], len(data)) == pytest.approx(SECONDS, abs=0.1)
    cbr = id3_tag(1000) + b"".join(frames_of(make_mp3(SECONDS))[1:])
    assert estimate_duration(cbr[:WINDOW], len(cbr)) == pytest.approx(SECONDS, abs=0.1)


def test_a_tag_longer_than_the_window_is_looked_past():
    art = id3_tag(3 * WINDOW)  # embedded cover art
    data = art + b"".join(frames_of(make_mp3(SECONDS))[1:])
    assert estimate_duration(data[:WINDOW], len(data)) is None
    start = id3v2_end(data[:WINDOW])
    assert start == len(art)
    window = data[start : start + WINDOW]
    assert estimate_duration(window, len(data), start) == pytest.approx(SECONDS, abs=0.1)


@pytest.mark.parametrize("head", [b"", b"ID3", b"not audio at all" * 100, bytes(WINDOW)])
def test_no_frames_no_estimate(head):
    assert estimate_duration(head, 10_000_000) is None


def test_id3v2_end_needs_a_valid_header():
    assert id3v2_end(id3_tag(0)) == 10
    assert id3v2_end(b"ID3\x04\x00\x10\x00\x00\x00\x01") == 10 + 1 + 10  # footer flag
    assert id3v2_end(b"ID3\x04\x00\x00\x80\x00\x00\x00") is None  # not syncsafe
    assert id3v2_end(b"RIFF\x00\x00\x00\x00\x00\x00") is None
