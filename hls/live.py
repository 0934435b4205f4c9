"""Live HLS of one stream: cuts the relay's MP3 frames into segments at frame boundaries,
muxes each in a worker thread (stream copy) and publishes it into the segment window.

A segment is closed as soon as the next frame would make it exceed the target duration,
or earlier when the now-playing title changes — so the new title's timed ID3 tag sits at
the first PTS of the segment it belongs to. A slow mux never blocks the relay: at most
`max_pending` segments wait for the worker; beyond that the oldest waiting one is skipped
(and the next published one carries a discontinuity).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from hls.id3 import id3_title_tag
from hls.packager import TsSegmenter
from hls.playlist import DateRange, MediaPlaylist, Segment
from hls.window import SegmentWindow
from relay.mp3 import Frame

log = logging.getLogger(__name__)


class AdMarker(Protocol):
    """An ad break the DJ scheduled, `position_seconds` from the stream's start."""

    @property
    def position_seconds(self) -> int: ...
    @property
    def duration_seconds(self) -> int: ...
    @property
    def ad_type(self) -> str: ...


@dataclass(slots=True)
class _Cut:
    frames: list[bytes]
    duration: float
    discontinuity: bool
    title: str | None
    started: datetime
    closed_at: float  # monotonic, when its last frame arrived


@dataclass(slots=True)
class LiveStats:
    segments: int = 0
    skipped: int = 0
    mux_seconds: float = 0.0  # CPU-ish: wall time spent in the worker thread
    publish_delays: list[float] = field(default_factory=list)  # last byte → in playlist


class LiveHls:
    """Owned by one relay; fed from the event loop, muxes in a worker thread."""

    def __init__(
        self,
        target_duration: int,
        clock: Callable[[], datetime],
        *,
        window_size: int = 6,
        max_pending: int = 3,
    ) -> None:
        self.target_duration = target_duration
        self.window = SegmentWindow(target_duration, window_size)
        self.stats = LiveStats()
        self.ad_markers: tuple[AdMarker, ...] = ()
        #: (key, text) of the last rendered playlist; the origin routes own the key.
        self.rendered: tuple[object, str] | None = None
        self._clock = clock
        self._segmenter: TsSegmenter | None = None
        self._frames: list[bytes] = []
        self._duration = 0.0
        self._frame_duration = 0.0
        self._discontinuity = False
        self._title: str | None = None
        self._started: datetime | None = None
        self._timeline: datetime | None = None  # program date-time of the next segment
        self._elapsed = 0.0  # media seconds since the stream's start (ad positions)
        self._queue: asyncio.Queue[_Cut] = asyncio.Queue(maxsize=max_pending)
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="hls-live-mux")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    # -- fed by the relay ------------------------------------------------------------------

    def on_frames(self, frames: Sequence[Frame], discontinuity: bool) -> None:
        if discontinuity:
            self._close()
            self._discontinuity = True
            self._timeline = None  # re-anchor the program date-time after an outage
        for frame in frames:
            if self._segmenter is None:
                header = frame.header
                self._segmenter = TsSegmenter(header.sample_rate, header.samples_per_frame)
            if self._frames and self._duration + frame.duration > self.target_duration:
                self._close()
            if not self._frames:
                self._started = self._timeline or self._clock()
            self._frames.append(frame.data)
            self._duration += frame.duration
            self._frame_duration = frame.duration
        if self._frames and self._duration + self._frame_duration > self.target_duration:
            self._close()  # full: publish now rather than when the next frame arrives

    def on_title(self, title: str | None) -> None:
        if title == self._title:
            return
        if self._duration >= 1.0:
            self._close()  # the new title starts a segment, so its ID3 tag is on time
        self._title = title

    def _close(self) -> None:
        if not self._frames or self._started is None:
            return
        cut = _Cut(
            self._frames,
            self._duration,
            self._discontinuity,
            self._title,
            self._started,
            time.monotonic(),
        )
        self._timeline = self._started + timedelta(seconds=self._duration)
        self._frames, self._duration, self._discontinuity = [], 0.0, False
        if self._queue.full():
            self._queue.get_nowait()  # drop the oldest waiting cut: the mux fell behind
            self.stats.skipped += 1
            cut.discontinuity = True
        self._queue.put_nowait(cut)

    # -- worker ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            cut = await self._queue.get()
            segmenter = self._segmenter
            assert segmenter is not None
            id3 = id3_title_tag(cut.title) if cut.title else None
            started = time.perf_counter()
            try:
                payload = await asyncio.to_thread(
                    segmenter.package, cut.frames, cut.discontinuity, id3
                )
            except Exception:  # one bad segment must not end the live stream
                log.exception("live HLS mux failed")
                continue
            self.stats.mux_seconds += time.perf_counter() - started
            self._publish(cut, payload)

    def _publish(self, cut: _Cut, payload: bytes) -> None:
        segment = Segment(
            uri="",
            duration=cut.duration,
            program_date_time=cut.started,
            discontinuity=cut.discontinuity,
            title=cut.title or "",
            **self._ad_signals(cut),
        )
        self.window.append(segment, payload)
        self._elapsed += cut.duration
        self.stats.segments += 1
        delays = self.stats.publish_delays
        delays.append(time.monotonic() - cut.closed_at)
        del delays[:-100]

    def _ad_signals(self, cut: _Cut) -> dict[str, object]:
        """Ad markers falling in this segment (positions from the stream's start):
        `#EXT-X-CUE-OUT` / `#EXT-X-CUE-IN` plus an `#EXT-X-DATERANGE` (RFC 8216 §4.3.2.7.1)."""
        start, end = self._elapsed, self._elapsed + cut.duration
        signals: dict[str, object] = {}
        ranges = []
        for marker in self.ad_markers:
            if start <= marker.position_seconds < end:
                signals["cue_out"] = float(marker.duration_seconds)
                offset = timedelta(seconds=marker.position_seconds - start)
                ranges.append(
                    DateRange(
                        id=f"ad-{marker.position_seconds}",
                        start_date=cut.started + offset,
                        planned_duration=float(marker.duration_seconds),
                        klass=marker.ad_type,
                    )
                )
            ad_end = marker.position_seconds + marker.duration_seconds
            if start <= ad_end < end:
                signals["cue_in"] = True
        if ranges:
            signals["dateranges"] = tuple(ranges)
        return signals

    def playlist(self, uri_for: Callable[[int], str]) -> MediaPlaylist:
        return self.window.playlist(uri_for)
