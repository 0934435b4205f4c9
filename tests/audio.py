"""Real audio for tests: MP3 (libmp3lame) and ADTS AAC (libavcodec's aac) encoded with PyAV,
and decoded back with libavformat.

Everything here blocks (it is codec work): from a test whose servers run on the same event
loop, call `decode_*` through `asyncio.to_thread`, or the decoder and the server deadlock.
"""

from __future__ import annotations

import io
import math
from array import array
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import av

from hls.tone import encode_mp3

_AMPLITUDE = 0.3 * 32767  # loud enough to survive the encoder, far from clipping
_DEFAULT_TIMEOUT = 10.0  # seconds; av.open's socket timeout for URLs


@lru_cache(maxsize=64)
def make_mp3(
    seconds: float,
    *,
    bitrate: int = 128_000,
    sample_rate: int = 44_100,
    channels: int = 2,
    frequency: float = 440.0,
    id3_title: str | None = None,
) -> bytes:
    """A CBR MP3 file of a sine tone, `seconds` long, encoded in memory by libmp3lame.

    The file starts with an ID3v2.4 tag (TIT2 = `id3_title`, TSSE = "Lavf…") only when
    `id3_title` is given, else directly with the first frame. The first frame is always
    LAME's "Info" tag (a silent frame carrying the encoder delay and padding), exactly as
    in files made by `lame` or `ffmpeg`. Results are cached: treat them as immutable.
    """
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    total = round(seconds * sample_rate)
    step = 2 * math.pi * frequency / sample_rate
    pcm = array("h", (round(_AMPLITUDE * math.sin(step * n)) for n in range(total)))

    return encode_mp3(
        pcm, sample_rate=sample_rate, channels=channels, bitrate=bitrate, title=id3_title
    )


@lru_cache(maxsize=64)
def make_aac(
    seconds: float,
    *,
    bitrate: int = 128_000,
    sample_rate: int = 44_100,
    channels: int = 2,
    frequency: float = 440.0,
) -> bytes:
    """An AAC-LC stream in ADTS of a sine tone, `seconds` long, encoded in memory by
    libavcodec's native AAC encoder and muxed by libavformat's `adts` muxer (as
    `ffmpeg -c:a aac -f adts` makes it). Cached: treat results as immutable."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    layout = {1: "mono", 2: "stereo"}[channels]
    total = round(seconds * sample_rate)
    step = 2 * math.pi * frequency / sample_rate
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="adts") as container:
        stream = container.add_stream("aac", rate=sample_rate, layout=layout)
        stream.bit_rate = bitrate
        stream.format = "fltp"
        for start in range(0, total, 1024):
            count = min(1024, total - start)
            block = array("f", (0.3 * math.sin(step * n) for n in range(start, start + count)))
            frame = av.AudioFrame(format="fltp", layout=layout, samples=count)
            frame.sample_rate = sample_rate
            frame.pts = start
            for plane in frame.planes:
                plane.update(block.tobytes())
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


@lru_cache(maxsize=4)
def make_ogg(seconds: float, sample_rate: int = 48_000) -> bytes:
    """An Ogg Opus file of a sine tone (a stream type the node refuses)."""
    total = round(seconds * sample_rate)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=sample_rate, layout="mono")
        stream.format = "s16"
        for start in range(0, total, 960):
            pcm = array("h", (round(_AMPLITUDE * math.sin(n / 20)) for n in range(960)))
            frame = av.AudioFrame(format="s16", layout="mono", samples=960)
            frame.sample_rate = sample_rate
            frame.pts = start
            frame.planes[0].update(pcm.tobytes())
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a real decoder got out of some audio."""

    frames: int  # decoded audio frames (one per MP3 frame)
    samples: int  # per channel
    sample_rate: int
    channels: int
    codec: str

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate if self.sample_rate else 0.0


def decode(data_or_url: bytes | str, *, limit: float | None = None, **open_options: Any) -> Decoded:
    """Decode every audio frame of `data_or_url` (bytes, a file path or an http(s) URL,
    `.m3u8` playlists included) with libavformat/libavcodec.

    `limit` stops after that many seconds of decoded audio (needed for live URLs, which
    never end). `open_options` go to `av.open` (`format=`, `options=`, `timeout=`…).
    Raises `av.error.FFmpegError` (e.g. `InvalidDataError`) when the input cannot be
    opened or a packet does not decode, and `ValueError` when no audio came out.
    """
    source: Any = io.BytesIO(data_or_url) if isinstance(data_or_url, bytes) else data_or_url
    if isinstance(data_or_url, str):
        open_options.setdefault("timeout", _DEFAULT_TIMEOUT)
    frames = samples = 0
    with av.open(source, "r", **open_options) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            frames += 1
            samples += frame.samples
            if limit is not None and samples >= limit * frame.sample_rate:
                break
        codec = stream.codec_context.name
        rate = stream.codec_context.sample_rate
        channels = stream.codec_context.channels
    if samples == 0:
        raise ValueError("no audio decoded")
    return Decoded(frames, samples, rate, channels, codec)


def decode_duration(
    data_or_url: bytes | str, *, limit: float | None = None, **open_options: Any
) -> float:
    """Seconds of audio a real decoder gets out of `data_or_url` (see `decode`)."""
    return decode(data_or_url, limit=limit, **open_options).duration


def decode_frames_count(
    data_or_url: bytes | str, *, limit: float | None = None, **open_options: Any
) -> int:
    """Number of audio frames a real decoder gets out of `data_or_url` (see `decode`)."""
    return decode(data_or_url, limit=limit, **open_options).frames
