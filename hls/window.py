"""The live edge of one stream: its newest segments with their bytes (RFC 8216 §6.2.2).
Sans-IO: no clock, no asyncio; the live packager appends and the origin routes read."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hls.playlist import MediaPlaylist, Segment, check_segment_duration

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def sequence_origin(now: datetime) -> int:
    """The first media sequence number of a live window opened at `now` (an aware
    datetime): the Unix time in milliseconds.

    Segment URLs are named by sequence number and cached as immutable, and a playlist's
    MEDIA-SEQUENCE must never go backwards (RFC 8216 §6.2.1), so a relay that starts again
    (node restart, deploy, disable/enable) must not reuse the numbers of its previous run.
    The window holds no state across runs; the clock does. Milliseconds, not target
    durations: a run uses one number per segment, and segments are often shorter than
    the target (cut at title changes, ad breaks, format changes), so a run's numbers
    outrun `now // target` (an hour with twenty title changes ends twenty segments ahead
    of it, and a restart within two minutes would reuse them). A segment holds at least one
    frame (24 ms of audio or more) and sources send audio in real time, so a run uses far
    fewer numbers than milliseconds pass: the next run starts above the last number of the
    previous one, unless the wall clock was set back by about as long as that run lasted.
    Also a sane DISCONTINUITY-SEQUENCE to start from:
    it counts at most one per segment, so it stays at or below MEDIA-SEQUENCE and keeps
    rising across runs too (§6.2.2)."""
    return (now - _EPOCH) // _MILLISECOND


@dataclass(frozen=True, slots=True)
class WindowEntry:
    """A live segment: its media sequence number, playlist metadata and TS bytes."""

    sequence: int
    segment: Segment
    payload: bytes


class SegmentWindow:
    """The live edge of one stream: the newest segments and their bytes (§6.2.2).

    Holds `size` segments, more when needed so the playlist never lasts less than three
    target durations (§6.2.2). A segment that leaves the playlist stays retrievable with
    `get` until as much media as its duration plus the playlist's has been appended since
    (§6.2.2, measured in media time since this class never reads a clock); `get` returns
    None after that, which the origin answers with 404. Not thread-safe: one event loop owns it.
    """

    def __init__(
        self,
        target_duration: int,
        size: int = 6,
        *,
        first_sequence: int = 0,
        discontinuity_sequence: int = 0,
    ) -> None:
        if target_duration < 1 or size < 1 or first_sequence < 0 or discontinuity_sequence < 0:
            raise ValueError("target duration and size must be positive, sequences non-negative")
        self.target_duration = target_duration
        self.size = size
        self._live: deque[WindowEntry] = deque()
        self._retired: deque[tuple[WindowEntry, float]] = deque()  # (entry, expiry media time)
        self._next_sequence = first_sequence
        self._discontinuity_sequence = discontinuity_sequence
        self._media_time = 0.0  # media appended so far: the window's only notion of time

    @property
    def media_sequence(self) -> int:
        """EXT-X-MEDIA-SEQUENCE: the sequence number of the first live segment (§4.3.3.2)."""
        return self._live[0].sequence if self._live else self._next_sequence

    @property
    def discontinuity_sequence(self) -> int:
        """EXT-X-DISCONTINUITY-SEQUENCE: discontinuities that have left the playlist (§6.2.2)."""
        return self._discontinuity_sequence

    @property
    def next_sequence(self) -> int:
        return self._next_sequence

    @property
    def duration(self) -> float:
        """Seconds of media in the playlist."""
        return math.fsum(entry.segment.duration for entry in self._live)

    @property
    def entries(self) -> tuple[WindowEntry, ...]:
        return tuple(self._live)

    def __len__(self) -> int:
        return len(self._live)

    def append(self, segment: Segment, payload: bytes) -> list[WindowEntry]:
        """Adds the next segment; returns the entries that left the playlist.

        `segment.uri` is not used: `playlist(uri_for)` names segments by sequence number.
        """
        if segment.duration <= 0:
            raise ValueError("a live segment must have a positive duration")
        check_segment_duration(segment.duration, self.target_duration)  # §6.2.1: fixed target
        self._live.append(WindowEntry(self._next_sequence, segment, payload))
        self._next_sequence += 1
        self._media_time += segment.duration
        while self._retired and self._retired[0][1] <= self._media_time:
            self._retired.popleft()
        return self._evict()

    def _evict(self) -> list[WindowEntry]:
        # §6.2.2: never shorter than three target durations, whatever `size` says.
        evicted: list[WindowEntry] = []
        duration = self.duration
        while len(self._live) > self.size:
            oldest = self._live[0].segment.duration
            if duration - oldest < 3 * self.target_duration:
                break
            entry = self._live.popleft()
            # §6.2.2: still available for its duration plus the longest playlist holding it.
            self._retired.append((entry, self._media_time + oldest + duration))
            duration -= oldest
            if entry.segment.discontinuity:
                self._discontinuity_sequence += 1  # §6.2.2
            evicted.append(entry)
        return evicted

    def get(self, sequence: int) -> WindowEntry | None:
        """The segment with this media sequence number while clients may still ask for it."""
        first_live = self.media_sequence
        if first_live <= sequence < self._next_sequence:
            return self._live[sequence - first_live]
        if self._retired and self._retired[0][0].sequence <= sequence < first_live:
            return self._retired[sequence - self._retired[0][0].sequence][0]
        return None

    def playlist(self, uri_for: Callable[[int], str], *, endlist: bool = False) -> MediaPlaylist:
        """The live playlist, naming each segment `uri_for(sequence)`."""
        return MediaPlaylist(
            target_duration=self.target_duration,
            media_sequence=self.media_sequence,
            segments=tuple(replace(e.segment, uri=uri_for(e.sequence)) for e in self._live),
            discontinuity_sequence=self._discontinuity_sequence,
            endlist=endlist,
        )
