"""Where the ad breaks of a live stream begin and end in its media timeline, so that the
live packager cuts segments exactly there (backlog US-6.4).

Sans-IO: positions are media seconds since the stream's start, passed in by the caller;
nothing here reads a clock or does I/O.

With segments cut at each marker's start and end, `#EXT-X-CUE-OUT` and the marker's
`#EXT-X-DATERANGE` (RFC 8216 §4.3.2.7) sit on the segment that starts at the break, and
`#EXT-X-CUE-IN` on the segment that starts where it ends — always after the CUE-OUT,
however short the break. (The cue tags apply to the segment that follows them, as in the
SCTE-35-in-HLS convention.) Overlapping markers form one break for the cue tags: CUE-OUT
at the first start, CUE-IN when the last of them has ended; each marker still gets its own
DATERANGE.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class AdMarker(Protocol):
    """An ad break the DJ scheduled, `position_seconds` from the stream's start."""

    @property
    def position_seconds(self) -> int: ...
    @property
    def duration_seconds(self) -> int: ...
    @property
    def ad_type(self) -> str: ...


@dataclass(frozen=True, slots=True)
class AdCue:
    """What the segment starting at `position` signals: a break ends there (`cue_in`,
    written first), a break starts there lasting `cue_out` seconds, and the markers that
    begin there (one DATERANGE each, including markers nested in a running break)."""

    position: float
    cue_in: bool = False
    cue_out: float | None = None
    starts: tuple[AdMarker, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.cue_in and self.cue_out is None and not self.starts


def merge_cues(first: AdCue | None, second: AdCue | None) -> AdCue | None:
    """Both cues on one segment, in timeline order (when the segment that should carry
    one of them was lost: skipped by a late mux, or failed). A break that started and
    ended in between cancels out, so a CUE-IN never comes before its CUE-OUT."""
    if first is None or second is None:
        return first or second
    if second.position < first.position:
        first, second = second, first
    cancelled = first.cue_out is not None and second.cue_in
    merged = AdCue(
        position=second.position,
        cue_in=first.cue_in or (second.cue_in and not cancelled),
        cue_out=second.cue_out if second.cue_out is not None or cancelled else first.cue_out,
        starts=(() if cancelled else first.starts) + second.starts,
    )
    return None if merged.empty else merged


def _key(marker: AdMarker) -> tuple[int, int, str]:
    return (marker.position_seconds, marker.duration_seconds, marker.ad_type)


class AdBreaks:
    """The markers still ahead and the breaks under way. `take(until)` returns, in order,
    the cues at positions before `until`; the packager cuts a segment at each."""

    def __init__(self) -> None:
        self._ahead: list[AdMarker] = []  # not begun yet, by position
        self._ends: list[float] = []  # positions where the breaks under way end
        self._begun: set[tuple[int, int, str]] = set()  # so a refresh does not repeat them

    def update(self, markers: Iterable[AdMarker], since: float) -> None:
        """Replace the markers (they are refreshed periodically). Markers beginning before
        `since` — media already cut into segments — are ignored; a break under way ends
        as planned even when its marker is gone."""
        self._begun = {key for key in self._begun if key[0] >= since}
        ahead = (m for m in markers if m.position_seconds >= since and _key(m) not in self._begun)
        self._ahead = sorted(ahead, key=_key)

    def take(self, until: float) -> list[AdCue]:
        """The cues due before media position `until`, each once."""
        cues: list[AdCue] = []
        while True:
            next_start = self._ahead[0].position_seconds if self._ahead else math.inf
            at = min(next_start, min(self._ends, default=math.inf))
            if at >= until:
                return cues
            was_open = bool(self._ends)
            self._ends = [end for end in self._ends if end > at]
            starts: list[AdMarker] = []
            while self._ahead and self._ahead[0].position_seconds == at:
                marker = self._ahead.pop(0)
                self._begun.add(_key(marker))
                starts.append(marker)
            opening = bool(starts) and not self._ends
            cue = AdCue(
                position=at,
                cue_in=was_open and not self._ends,
                cue_out=max(m.duration_seconds for m in starts) if opening else None,
                starts=tuple(starts),
            )
            self._ends += [m.position_seconds + m.duration_seconds for m in starts]
            if not cue.empty:
                cues.append(cue)
