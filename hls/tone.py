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
    return _encode(pcm, bitrate), [title for title, _ in CHORDS]


def _encode(pcm: array, bitrate: int) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3", options={"id3v2_version": "0"}) as container:
        stream = container.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="stereo")
        stream.bit_rate = bitrate
        stream.format = "s16p"
        for start in range(0, len(pcm), 1152):
            block = pcm[start : start + 1152].tobytes()
            frame = av.AudioFrame(format="s16p", layout="stereo", samples=len(block) // 2)
            frame.sample_rate = SAMPLE_RATE
            frame.pts = start
            for plane in frame.planes:
                plane.update(block)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
