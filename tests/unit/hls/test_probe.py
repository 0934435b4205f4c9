"""probe_audio on real files in every accepted format, and on what DJs upload by mistake."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest

from hls.ladder import CorruptAudio, NotAudio, probe_audio
from tests.audiofiles import tone, write_audio

# kind → (format, codec, lossless, bit rate asked of the encoder)
ACCEPTED = {
    "mp3": ("mp3", "mp3", False, 128),
    "wav": ("wav", "pcm_s16le", True, None),
    "wav24": ("wav", "pcm_s24le", True, None),
    "flac": ("flac", "flac", True, None),
    "ogg": ("ogg", "vorbis", False, 160),
    "opus": ("ogg", "opus", False, 96),
    "m4a": ("m4a", "aac", False, 128),
    "aac": ("aac", "aac", False, 128),
    "aiff": ("aiff", "pcm_s16be", True, None),
    "alac": ("m4a", "alac", True, None),
}


@pytest.mark.parametrize("kind", sorted(ACCEPTED))
def test_probe_reads_every_accepted_format(kind: str, tmp_path: Path) -> None:
    fmt, codec, lossless, bitrate = ACCEPTED[kind]
    # A misleading name on purpose: the content decides.
    path = write_audio(tmp_path / "upload.bin", kind, tone(12), bitrate_kbps=bitrate)
    info = probe_audio(path)
    assert (info.format, info.codec, info.lossless) == (fmt, codec, lossless)
    assert info.sample_rate == (48_000 if codec == "opus" else 44_100)
    assert info.channels == 2
    assert info.duration_seconds == pytest.approx(12.0, abs=0.1)
    if kind in ("mp3", "m4a"):
        assert info.bitrate_kbps == pytest.approx(bitrate, rel=0.1)
    if kind.startswith("wav") or kind == "aiff":
        bits = 24 if kind == "wav24" else 16
        assert info.bitrate_kbps == round(44_100 * 2 * bits / 1000)


def test_probe_is_fast_on_a_five_minute_file(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "long.flac", "flac", tone(300, noise=0.0))
    started = time.process_time()
    info = probe_audio(path)
    assert time.process_time() - started < 0.3
    assert info.duration_seconds == pytest.approx(300, abs=0.1)


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"", "an empty file"),
        (_png(), "a PNG image"),
        (b"Artist - Title\nlyrics, not audio\n" * 20, "a text file"),
        (
            b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00",
            "a MIDI file",
        ),
        (b"%PDF-1.7\n" + bytes(200), "a PDF document"),
    ],
    ids=["empty", "png", "text", "midi", "pdf"],
)
def test_probe_names_what_was_uploaded_instead(content: bytes, found: str, tmp_path: Path) -> None:
    path = tmp_path / "track.mp3"  # the name lies
    path.write_bytes(content)
    with pytest.raises(NotAudio) as caught:
        probe_audio(path)
    assert caught.value.detected == found
    assert found in caught.value.message
    assert "upload MP3, WAV, FLAC" in caught.value.message


def test_probe_refuses_a_video_without_audio(tmp_path: Path) -> None:
    path = tmp_path / "clip.m4a"
    with av.open(str(path), "w", format="mp4") as output:
        stream = output.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(
                np.full((64, 64, 3), index * 20, dtype=np.uint8), format="rgb24"
            )
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    with pytest.raises(NotAudio) as caught:
        probe_audio(path)
    assert caught.value.detected == "a video (mpeg4)"


def test_probe_refuses_a_truncated_flac(tmp_path: Path) -> None:
    whole = write_audio(tmp_path / "whole.flac", "flac", tone(12))
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(CorruptAudio) as caught:
        probe_audio(cut)
    assert "truncated" in caught.value.message


def test_probe_refuses_a_truncated_wav(tmp_path: Path) -> None:
    whole = write_audio(tmp_path / "whole.wav", "wav", tone(12))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    with pytest.raises(CorruptAudio, match="truncated"):
        probe_audio(cut)


def test_probe_refuses_garbage_after_a_flac_header(tmp_path: Path) -> None:
    whole = write_audio(tmp_path / "whole.flac", "flac", tone(12))
    data = whole.read_bytes()
    noise = np.random.default_rng(3).integers(0, 256, len(data) - 8192, dtype=np.uint8)
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(data[:8192] + noise.tobytes())
    with pytest.raises(CorruptAudio):
        probe_audio(garbage)


def test_probe_accepts_an_mp3_behind_a_huge_id3_tag(tmp_path: Path) -> None:
    mp3 = write_audio(tmp_path / "plain.mp3", "mp3", tone(12), bitrate_kbps=128)
    frame = b"APIC" + (5_000_000).to_bytes(4, "big") + b"\x00\x00" + bytes(5_000_000)
    size = len(frame)
    synchsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    tagged = tmp_path / "tagged.mp3"
    tagged.write_bytes(b"ID3\x03\x00\x00" + synchsafe + frame + mp3.read_bytes())
    started = time.process_time()
    info = probe_audio(tagged)
    assert time.process_time() - started < 0.3
    assert (info.format, info.codec) == ("mp3", "mp3")
    assert info.duration_seconds == pytest.approx(12.0, abs=0.1)


def test_an_mp3_without_a_length_header_is_not_called_truncated(tmp_path: Path) -> None:
    # Without a Xing/Info frame libavformat estimates the duration from the bit rate; a
    # VBR file's estimate may be far off, which must not read as a cut-off file.
    tagged = write_audio(tmp_path / "vbr.mp3", "mp3", tone(12), bitrate_kbps=128).read_bytes()
    start = tagged.index(b"Info") - 36  # the Info frame: header + 32 bytes of side info
    size = 417  # one 128 kbit/s 44.1 kHz frame, no padding
    assert tagged[start] == 0xFF
    plain = tmp_path / "plain.mp3"
    plain.write_bytes(tagged[:start] + tagged[start + size :])
    info = probe_audio(plain)
    assert info.duration_seconds == pytest.approx(12.0, abs=0.2)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(plain.read_bytes()[: len(plain.read_bytes()) // 2])
    assert probe_audio(cut).duration_seconds == pytest.approx(6.0, abs=0.2)


def test_a_truncated_mp3_with_an_info_frame_is_refused(tmp_path: Path) -> None:
    whole = write_audio(tmp_path / "whole.mp3", "mp3", tone(12), bitrate_kbps=128)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(CorruptAudio, match="truncated"):
        probe_audio(cut)
