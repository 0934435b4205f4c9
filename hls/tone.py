"""A short generated MP3 for the demo source: a few soft chords, encoded with PyAV.
Blocking (codec work): call it in a worker thread."""

from __future__ import annotations

import io
import math
from array import array

import av

SAMPLE_RATE = 44_100
#: (title, chord frequencies in Hz); each chord lasts `seconds_per_chord`.
CHORDS = (
    ("Demo Ensemble - A Major Sunrise", (220.0, 277.18, 329.63)),
    ("Demo Ensemble - F Sharp Minor Drift", (184.99, 220.0, 277.18)),
    ("Demo Ensemble - D Major Glow", (146.83, 185.0, 220.0)),
    ("Demo Ensemble - E Major Return", (164.81, 207.65, 246.94)),
)


def demo_clip(seconds_per_chord: float = 8.0, bitrate: int = 128_000) -> tuple[bytes, list[str]]:
    """The clip (stereo CBR MP3) and the title of each chord section, in order."""
    pcm = array("h")
    per_chord = round(seconds_per_chord * SAMPLE_RATE)
    fade = SAMPLE_RATE // 20
    for _title, freqs in CHORDS:
        steps = [2 * math.pi * f / SAMPLE_RATE for f in freqs]
        for n in range(per_chord):
            envelope = min(1.0, n / fade, (per_chord - n) / fade)
            value = sum(math.sin(step * n) for step in steps) / len(steps)
            pcm.append(round(0.25 * 32767 * envelope * value))
    clip = encode_mp3(pcm, sample_rate=SAMPLE_RATE, bitrate=bitrate)
    return clip, [title for title, _ in CHORDS]


def encode_mp3(
    pcm: array[int],
    *,
    sample_rate: int,
    channels: int = 2,
    bitrate: int = 128_000,
    title: str | None = None,
) -> bytes:
    """Signed 16-bit mono samples → a CBR MP3 file (every channel gets the same samples).
    It starts with LAME's "Info" frame, and with an ID3v2.4 tag only when `title` is given."""
    layout = {1: "mono", 2: "stereo"}[channels]
    buffer = io.BytesIO()
    # id3v2_version=0 makes the mp3 muxer skip the ID3v2 tag entirely.
    options = {"id3v2_version": "4" if title is not None else "0"}
    with av.open(buffer, "w", format="mp3", options=options) as container:
        if title is not None:
            container.metadata["title"] = title
        stream = container.add_stream("libmp3lame", rate=sample_rate, layout=layout)
        stream.bit_rate = bitrate  # a bit rate and no global quality: libmp3lame runs CBR
        stream.format = "s16p"  # what we feed, so PyAV does not insert a resampler
        frame_size = 1152 if sample_rate >= 32_000 else 576  # MPEG-1 vs MPEG-2 LSF
        for start in range(0, len(pcm), frame_size):
            block = pcm[start : start + frame_size].tobytes()
            frame = av.AudioFrame(format="s16p", layout=layout, samples=len(block) // 2)
            frame.sample_rate = sample_rate
            frame.pts = start
            for plane in frame.planes:
                plane.update(block)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
