"""EBU R128 integrated loudness (LUFS) of decoded audio, by libavfilter's `ebur128` filter
through PyAV's filter graph (ITU-R BS.1770 K-weighting and gating).

Blocking (PyAV): runs in the ladder's worker thread.
"""

from __future__ import annotations

import math
from fractions import Fraction

import av
from av.audio.frame import AudioFrame
from av.filter import Graph

_INTEGRATED = "lavfi.r128.I"


class LoudnessMeter:
    """Feed frames (any format the graph can convert, at `rate` and `layout`); `lufs`
    after `finish` is the integrated loudness, None when everything was gated away
    (silence)."""

    def __init__(self, rate: int, layout: str, sample_format: str = "fltp") -> None:
        self.graph = Graph()
        source = self.graph.add_abuffer(
            format=sample_format, sample_rate=rate, layout=layout, time_base=Fraction(1, rate)
        )
        meter = self.graph.add("ebur128", "metadata=1")
        sink = self.graph.add("abuffersink")
        source.link_to(meter)
        meter.link_to(sink)
        self.graph.configure()
        self._integrated: float | None = None

    def feed(self, frame: AudioFrame) -> None:
        """Measure `frame`."""
        self.graph.push(frame)
        self._drain()

    def finish(self) -> float | None:
        """End of the audio: the integrated loudness in LUFS."""
        self.graph.push(None)
        self._drain()
        return self._integrated

    @property
    def lufs(self) -> float | None:
        return self._integrated

    def _drain(self) -> None:
        while True:
            try:
                frame = self.graph.pull()
            except (BlockingIOError, EOFError, av.error.EOFError):
                return
            value = frame.metadata.get(_INTEGRATED)
            if value is not None:
                number = float(value)
                # The filter reports -70 LUFS (the absolute gate) until a block passes it.
                self._integrated = number if math.isfinite(number) and number > -70 else None
