"""Live HLS of one stream: cuts the relay's audio frames (MP3, or AAC in ADTS) into segments
at frame boundaries, muxes each in a worker thread (stream copy) and publishes it into the
segment window.

A segment is closed as soon as the next frame would make it exceed the target duration,
or earlier when the now-playing title changes — so the new title's timed ID3 tag sits at
the first PTS of the segment it belongs to — or when the audio format changes (a source
that reconnects at another codec, sample rate, MPEG version or channel count): the next segment
is muxed by a new segmenter whose timestamps continue where the old one stopped, behind an
EXT-X-DISCONTINUITY (RFC 8216 §4.3.2.3: a change of encoding parameters).

Each run (relay start) numbers its segments from the wall clock (`hls.window.sequence_origin`),
so segment URLs are never reused and MEDIA-SEQUENCE never goes back across restarts; its
first segment carries a discontinuity. Ad marker positions stay media seconds since the
run began: they do not depend on sequence numbers.

A slow mux never blocks the relay: at most `max_pending` segments wait for the worker;
beyond that the oldest waiting one is skipped (and the next published one carries a
discontinuity).

Segments are also cut where an ad break starts or ends (`hls.adbreaks`), so its cue tags
sit exactly at the marker positions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict

from hls.adbreaks import AdBreaks, AdCue, AdMarker, merge_cues
from hls.id3 import id3_title_tag
from hls.packager import DEFAULT_START_PTS, TsSegmenter
from hls.playlist import DateRange, MediaPlaylist, Segment
from hls.window import SegmentWindow, WindowEntry, sequence_origin
from relay.codec import AudioFrame, Codec

__all__ = ["HlsPosition", "LiveHls", "LiveStats", "PositionSink", "WindowEntry"]

log = logging.getLogger(__name__)


#: What a segmenter is built for: (codec, sample rate, samples per frame, channels).
AudioFormat = tuple[Codec, int, int, int]


@dataclass(slots=True)
class _Cut:
    frames: list[bytes]
    duration: float
    discontinuity: bool
    title: str | None
    started: datetime
    closed_at: float  # monotonic, when its last frame arrived
    audio_format: AudioFormat
    cue: AdCue | None = None  # ad break signals at its start


class _AdSignals(TypedDict, total=False):
    """The `Segment` fields that carry a segment's ad break signals."""

    cue_in: bool
    cue_out: float | None
    dateranges: tuple[DateRange, ...]


@dataclass(frozen=True, slots=True)
class HlsPosition:
    """Where a stream's live playlist stands, so that another run (on this node or on the
    node that takes the stream over) carries it on: the next media sequence number, and
    the discontinuities up to there (the next run's EXT-X-DISCONTINUITY-SEQUENCE)."""

    next_sequence: int
    discontinuities: int
    #: The newest segments of the earlier run, consecutive and ending just before
    #: `next_sequence`: the next run lists them first, so no player sees a hole.
    recent: tuple[WindowEntry, ...] = ()


#: Told the position a segment takes the playlist to, with the segment, awaited before the
#: segment is published (so a number is recorded as used, and the segment kept where the
#: next owner and the other nodes find it, before any client can see it).
PositionSink = Callable[[HlsPosition, WindowEntry], Awaitable[None]]


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
        resume: HlsPosition | None = None,
        on_position: PositionSink | None = None,
        first_segment_seconds: float | None = None,
    ) -> None:
        """`resume`: carry on the playlist of an earlier run (this stream's previous owner)
        instead of starting from the clock; `on_position` is told of each segment before it
        is published. `first_segment_seconds`: close the run's first segment early, so a
        player that kept polling through a takeover gets audio sooner."""
        self.target_duration = target_duration
        if resume is None:
            # Numbers above every earlier run's (the origin routes cache segment URLs as
            # immutable), the discontinuity count rising with them: `sequence_origin`.
            origin = sequence_origin(clock())
            resume = HlsPosition(origin, origin)
        recent = resume.recent
        if [e.sequence for e in recent] != list(
            range(resume.next_sequence - len(recent), resume.next_sequence)
        ):
            recent = ()  # not the run's last segments: start after them, listing none
        carried = sum(entry.segment.discontinuity for entry in recent)
        self.window = SegmentWindow(
            target_duration,
            window_size,
            first_sequence=resume.next_sequence - len(recent),
            discontinuity_sequence=resume.discontinuities - carried,
        )
        for entry in recent:
            self.window.append(entry.segment, entry.payload)
        self._on_position = on_position
        self._segment_limit = float(first_segment_seconds or target_duration)
        self.stats = LiveStats()
        self._ad_markers: tuple[AdMarker, ...] = ()
        self._breaks = AdBreaks()
        self._cue: AdCue | None = None  # for the segment being gathered
        self._lost_cue: AdCue | None = None  # of a segment whose mux failed
        #: (key, representation) of the playlist as last rendered, dropped when a segment is
        #: appended; the origin routes own both.
        self.rendered: tuple[object, object] | None = None
        self._clock = clock
        self._segmenter: TsSegmenter | None = None  # the worker's
        self._segmenter_format: AudioFormat | None = None
        self._format: AudioFormat | None = None  # of the frames being gathered
        self._frames: list[bytes] = []
        self._duration = 0.0
        self._frame_duration = 0.0
        # The first segment of a run is marked: its timestamps start afresh, and a player
        # that kept polling across a restart must reset its timeline (RFC 8216 §4.3.2.3).
        self._discontinuity = True
        self._title: str | None = None
        self._started: datetime | None = None
        self._timeline: datetime | None = None  # program date-time of the next segment
        self._position = 0.0  # media seconds since the stream's start (ad positions)
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

    def on_frames(
        self, frames: Sequence[AudioFrame], discontinuity: bool, codec: Codec = Codec.MP3
    ) -> None:
        if discontinuity:
            self._close()
            self._discontinuity = True
            self._timeline = None  # re-anchor the program date-time after an outage
        for frame in frames:
            header = frame.header
            audio_format = (codec, header.sample_rate, header.samples_per_frame, header.channels)
            if audio_format != self._format:
                if self._format is not None:
                    self._close()  # a segment holds one format; the next one is marked
                    self._discontinuity = True
                self._format = audio_format
            self._cut_for_ads(frame.duration)
            if self._frames and self._duration + frame.duration > self._segment_limit:
                self._close()
            if not self._frames:
                self._started = self._timeline or self._clock()
            self._frames.append(frame.data)
            self._duration += frame.duration
            self._frame_duration = frame.duration
            self._position += frame.duration
        if self._frames and self._duration + self._frame_duration > self._segment_limit:
            self._close()  # full: publish now rather than when the next frame arrives

    def on_title(self, title: str | None) -> None:
        if title == self._title:
            return
        if self._duration >= 1.0:
            self._close()  # the new title starts a segment, so its ID3 tag is on time
        self._title = title

    def _close(self) -> None:
        if not self._frames or self._started is None or self._format is None:
            return
        cut = _Cut(
            self._frames,
            self._duration,
            self._discontinuity,
            self._title,
            self._started,
            time.monotonic(),
            self._format,
        )
        cut.cue, self._cue = self._cue, None
        self._timeline = self._started + timedelta(seconds=self._duration)
        self._frames, self._duration, self._discontinuity = [], 0.0, False
        self._segment_limit = float(self.target_duration)
        if self._queue.full():
            dropped = self._queue.get_nowait()  # the oldest waiting cut: the mux fell behind
            cut.cue = merge_cues(dropped.cue, cut.cue)
            self.stats.skipped += 1
            cut.discontinuity = True
        self._queue.put_nowait(cut)

    # -- worker ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            cut = await self._queue.get()
            segmenter = self._segmenter_for(cut.audio_format)
            id3 = id3_title_tag(cut.title) if cut.title else None
            started = time.perf_counter()
            try:
                payload = await asyncio.to_thread(
                    segmenter.package, cut.frames, cut.discontinuity, id3
                )
            except Exception:  # one bad segment must not end the live stream
                log.exception("live HLS mux failed")
                self._lost_cue = merge_cues(self._lost_cue, cut.cue)
                continue
            self.stats.mux_seconds += time.perf_counter() - started
            segment = self._segment(cut)
            if self._on_position is not None:
                await self._record_position(
                    WindowEntry(self.window.next_sequence, segment, payload)
                )
            self.window.append(segment, payload)
            self.rendered = None
            self.stats.segments += 1
            delays = self.stats.publish_delays
            delays.append(time.monotonic() - cut.closed_at)
            del delays[:-100]

    async def _record_position(self, entry: WindowEntry) -> None:
        """Tell `on_position` where the segment about to be published takes the playlist.
        A sink that fails or hangs does not hold the audio back: the segment is published
        after at most a second (a takeover then starts numbering from the clock)."""
        assert self._on_position is not None
        window = self.window
        marked = sum(e.segment.discontinuity for e in window.entries) + entry.segment.discontinuity
        position = HlsPosition(window.next_sequence + 1, window.discontinuity_sequence + marked)
        try:
            async with asyncio.timeout(1.0):
                await self._on_position(position, entry)
        except Exception:  # logged; the live stream goes on
            log.warning("could not record the live playlist's position", exc_info=True)

    def _segmenter_for(self, audio_format: AudioFormat) -> TsSegmenter:
        """The segmenter for this format; a new one on a change, starting at the old one's
        next PTS so timestamps keep running forwards. Only the worker calls this, once
        every earlier cut is muxed, so `next_pts` is exact."""
        previous = self._segmenter
        if previous is None or audio_format != self._segmenter_format:
            codec, rate, samples_per_frame, _channels = audio_format
            start = DEFAULT_START_PTS if previous is None else previous.next_pts
            self._segmenter = TsSegmenter(
                rate, samples_per_frame, start_pts=start, codec=codec.ts_codec
            )
            self._segmenter_format = audio_format
        assert self._segmenter is not None
        return self._segmenter

    def _segment(self, cut: _Cut) -> Segment:
        return Segment(
            uri="",
            duration=cut.duration,
            program_date_time=cut.started,
            discontinuity=cut.discontinuity,
            title=cut.title or "",
            **self._ad_signals(cut),
        )

    def _ad_signals(self, cut: _Cut) -> _AdSignals:
        """`#EXT-X-CUE-IN`, `#EXT-X-CUE-OUT` and one `#EXT-X-DATERANGE` (RFC 8216
        §4.3.2.7) per marker starting here; the segment starts at the marker position."""
        cue, self._lost_cue = merge_cues(self._lost_cue, cut.cue), None
        if cue is None:
            return {}
        ranges = tuple(
            DateRange(
                id=f"ad-{marker.position_seconds}" + (f"-{n}" if n else ""),
                start_date=cut.started,
                planned_duration=float(marker.duration_seconds),
                klass=marker.ad_type,
            )
            for n, marker in enumerate(cue.starts)
        )
        return {"cue_in": cue.cue_in, "cue_out": cue.cue_out, "dateranges": ranges}

    # -- ad breaks -------------------------------------------------------------------------

    @property
    def ad_markers(self) -> tuple[AdMarker, ...]:
        return self._ad_markers

    @ad_markers.setter
    def ad_markers(self, markers: Sequence[AdMarker]) -> None:
        """The stream's markers (the relay refreshes them); breaks not yet cut into
        published segments are cut at their positions."""
        self._ad_markers = tuple(markers)
        self._breaks.update(self._ad_markers, since=self._position - self._duration)

    def _cut_for_ads(self, frame_duration: float) -> None:
        """Before a frame starting at `_position`: cut at every break start or end whose
        nearest frame boundary is here — or, for markers that arrived late, back among the
        frames being gathered."""
        for cue in self._breaks.take(self._position + frame_duration / 2):
            after = round((self._position - cue.position) / frame_duration)
            self._split(max(0, len(self._frames) - after))
            self._cue = merge_cues(self._cue, cue)

    def _split(self, keep: int) -> None:
        """Close the first `keep` gathered frames as a segment; the rest start the next."""
        if keep == 0:
            return
        rest = self._frames[keep:]
        rest_duration = len(rest) * self._frame_duration
        self._frames = self._frames[:keep]
        self._duration -= rest_duration
        self._close()
        if rest:
            self._frames, self._duration, self._started = rest, rest_duration, self._timeline

    def playlist(self, uri_for: Callable[[int], str]) -> MediaPlaylist:
        return self.window.playlist(uri_for)
