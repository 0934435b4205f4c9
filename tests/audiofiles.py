"""Real audio files in every format a DJ uploads, encoded by PyAV (libavcodec) in the test:
a sine tone with a little noise (so lossy encoders have something to spend bits on),
optionally followed by silence.

Blocking (codec work): call from a worker thread in async tests.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

#: (container format, encoder, sample format) per kind of file.
KINDS: dict[str, tuple[str, str, str]] = {
    "mp3": ("mp3", "libmp3lame", "fltp"),
    "wav": ("wav", "pcm_s16le", "s16"),
    "wav24": ("wav", "pcm_s24le", "s32"),
    "flac": ("flac", "flac", "s16"),
    "ogg": ("ogg", "vorbis", "fltp"),
    "opus": ("ogg", "libopus", "flt"),
    "m4a": ("mp4", "aac", "fltp"),
    "aac": ("adts", "aac", "fltp"),
    "aiff": ("aiff", "pcm_s16be", "s16"),
    "alac": ("ipod", "alac", "s16p"),
}


def tone(
    seconds: float,
    *,
    rate: int = 44_100,
    channels: int = 2,
    amplitude: float = 0.1,
    frequency: float = 1000.0,
    noise: float = 0.02,
    silence: float = 0.0,
) -> np.ndarray:
    """Samples (channels × n, float32): the tone for `seconds`, then `silence` seconds."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    signal = amplitude * np.sin(2 * math.pi * frequency * t)
    if noise:
        signal = signal + np.random.default_rng(7).uniform(-noise, noise, n)
    signal = np.concatenate([signal, np.zeros(round(silence * rate))]).astype(np.float32)
    return np.tile(signal, (channels, 1))


def write_audio(
    path: Path,
    kind: str,
    samples: np.ndarray,
    *,
    rate: int = 44_100,
    bitrate_kbps: int | None = None,
) -> Path:
    """`samples` (channels × n floats) encoded as `kind` (a key of KINDS) into `path`."""
    fmt, encoder, sample_format = KINDS[kind]
    channels = samples.shape[0]
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as output:
        stream = output.add_stream(encoder, rate=48_000 if encoder == "libopus" else rate)
        context = stream.codec_context
        context.layout = layout
        context.format = sample_format
        context.time_base = Fraction(1, context.sample_rate)
        if bitrate_kbps:
            context.bit_rate = bitrate_kbps * 1000
        if encoder == "vorbis":
            context.options = {"strict": "experimental"}
        source = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
        source.sample_rate = rate
        source.pts = 0
        source.time_base = Fraction(1, rate)
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=context.sample_rate)
        for frame in [*resampler.resample(source), *resampler.resample(None)]:
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return path


def decoded_seconds(path: Path | str) -> tuple[float, str, int, int]:
    """(seconds, codec, sample rate, channels) as a real decoder plays the file."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = 0
        for frame in container.decode(stream):
            samples += frame.samples
        ctx = stream.codec_context
        return samples / ctx.sample_rate, ctx.codec.canonical_name, ctx.sample_rate, ctx.channels
