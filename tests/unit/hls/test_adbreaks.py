"""Ad breaks in live HLS (US-6.4): the sans-IO schedule that says where segments are cut,
and the live packager fed real MP3 frames, whose playlist must carry CUE-OUT / DATERANGE
on the segment starting at the marker and CUE-IN on the one starting where it ends."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from hls.adbreaks import AdBreaks, AdCue, merge_cues
from hls.live import LiveHls
from hls.playlist import MediaPlaylist, parse_media_playlist, render_media_playlist
from relay.mp3 import Frame, Mp3FrameReader
from tests.audio import make_mp3

T0 = datetime(2024, 5, 1, 20, 0, 0, tzinfo=UTC)
FRAME = 1152 / 44_100  # seconds of one MPEG-1 Layer III frame at 44.1 kHz


@dataclass(frozen=True)
class Marker:
    position_seconds: int
    duration_seconds: int
    ad_type: str = "mid-roll"


def walk(breaks: AdBreaks, seconds: float, step: float = FRAME) -> list[tuple[float, AdCue]]:
    """Frame boundaries from 0 to `seconds`, as the packager asks: the cues each one got."""
    got = []
    position = 0.0
    while position < seconds:
        got += [(position, cue) for cue in breaks.take(position + step / 2)]
        position += step
    return got


def test_a_break_shorter_than_a_segment_cues_out_then_in_at_its_edges() -> None:
    breaks = AdBreaks()
    breaks.update([Marker(8, 1)], since=0.0)
    (at_out, out), (at_in, back) = walk(breaks, 20)
    assert out.cue_out == 1 and not out.cue_in and out.starts == (Marker(8, 1),)
    assert back.cue_in and back.cue_out is None and back.starts == ()
    # Cut at the frame boundary nearest each edge: within half a frame.
    assert abs(at_out - 8) <= FRAME / 2 and abs(at_in - 9) <= FRAME / 2


def test_refreshing_the_same_markers_never_repeats_a_cue() -> None:
    breaks = AdBreaks()
    markers = [Marker(2, 2, "pre-roll"), Marker(10, 5)]
    breaks.update(markers, since=0.0)
    assert [c.position for c in breaks.take(2.5)] == [2]
    breaks.update(markers, since=2.0)  # the relay refreshes every heartbeat
    assert [(c.position, c.cue_in, c.cue_out) for c in breaks.take(20)] == [
        (4, True, None),
        (10, False, 5),
        (15, True, None),
    ]
    breaks.update(markers, since=20.0)
    assert breaks.take(100) == []


def test_a_break_under_way_ends_even_if_its_marker_is_removed() -> None:
    breaks = AdBreaks()
    breaks.update([Marker(5, 10)], since=0.0)
    assert breaks.take(6)[0].cue_out == 10
    breaks.update([], since=6.0)
    (back,) = breaks.take(100)
    assert (back.position, back.cue_in) == (15, True)


def test_markers_already_cut_into_segments_are_not_signalled_half_way() -> None:
    breaks = AdBreaks()
    breaks.update([Marker(5, 10), Marker(30, 5)], since=12.0)  # set while at 12 s
    assert [(c.position, c.cue_in, c.cue_out) for c in breaks.take(100)] == [
        (30, False, 5),
        (35, True, None),
    ]


def test_overlapping_markers_make_one_break_with_a_daterange_each() -> None:
    breaks = AdBreaks()
    breaks.update([Marker(10, 30), Marker(20, 5, "pre-roll"), Marker(35, 10)], since=0)
    cues = breaks.take(100)
    assert [(c.position, c.cue_in, c.cue_out, len(c.starts)) for c in cues] == [
        (10, False, 30, 1),
        (20, False, None, 1),  # nested: a DATERANGE only
        (35, False, None, 1),
        (45, True, None, 0),  # when the last of them ends
    ]


def test_back_to_back_breaks_cue_in_and_out_on_one_segment() -> None:
    breaks = AdBreaks()
    breaks.update([Marker(0, 30, "pre-roll"), Marker(30, 15)], since=0)
    first, second, last = breaks.take(100)
    assert (first.position, first.cue_out) == (0, 30)
    assert (second.position, second.cue_in, second.cue_out) == (30, True, 15)
    assert (last.position, last.cue_in) == (45, True)


def test_cues_of_a_lost_segment_merge_in_order_and_cancel_out() -> None:
    out = AdCue(8, cue_out=1.0, starts=(Marker(8, 1),))
    back = AdCue(9, cue_in=True)
    assert merge_cues(out, back) is None  # the whole break was lost: neither tag
    assert merge_cues(back, out) is None  # the order is the timeline's, not the arguments'
    nxt = AdCue(9, cue_in=True, cue_out=4.0, starts=(Marker(9, 4),))
    assert merge_cues(out, nxt) == AdCue(9, cue_out=4.0, starts=(Marker(9, 4),))
    assert merge_cues(None, back) is back


# -- the live packager ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    """40 s of real 128 kbit/s MP3 frames, as the relay's frame reader hands them over."""
    parsed = Mp3FrameReader().feed(make_mp3(40.0))
    return [f for f in parsed if not f.is_info_frame]


async def package(
    frames: list[Frame], markers: list[Marker], *, late_by: float = 0.0, segments: int = 5
) -> MediaPlaylist:
    """Feed `frames` in 0.1 s chunks like the relay; `markers` arrive after `late_by` s of
    media. The rendered live playlist, parsed back, once `segments` are published."""
    live = LiveHls(6, lambda: T0, window_size=50, max_pending=50)
    live.start()
    try:
        if not late_by:
            live.ad_markers = markers
        fed = 0.0
        for start in range(0, len(frames), 4):
            chunk = frames[start : start + 4]
            live.on_frames(chunk, discontinuity=False)
            fed += sum(f.duration for f in chunk)
            if late_by and fed >= late_by and not live.ad_markers:
                live.ad_markers = markers
        deadline = time.monotonic() + 30
        while len(live.window) < segments:
            assert time.monotonic() < deadline, "segments were not published in time"
            await asyncio.sleep(0.01)
        text = render_media_playlist(live.playlist(lambda seq: f"{seq}.ts"))
    finally:
        await live.stop()
    return parse_media_playlist(text)


def offsets(playlist: MediaPlaylist) -> list[float]:
    assert all(s.program_date_time is not None for s in playlist.segments)
    return [(s.program_date_time - T0).total_seconds() for s in playlist.segments]  # type: ignore[operator]


async def test_segments_are_cut_at_the_marker_start_and_end(frames: list[Frame]) -> None:
    playlist = await package(frames, [Marker(8, 1)])
    starts = offsets(playlist)
    out = next(i for i, s in enumerate(playlist.segments) if s.cue_out is not None)
    back = next(i for i, s in enumerate(playlist.segments) if s.cue_in)
    assert out < back  # CUE-OUT before CUE-IN, even for a break shorter than a segment
    assert abs(starts[out] - 8) <= FRAME / 2 and abs(starts[back] - 9) <= FRAME / 2
    assert back == out + 1 and playlist.segments[out].cue_out == 1
    (daterange,) = playlist.segments[out].dateranges
    assert daterange.start_date == playlist.segments[out].program_date_time
    assert (daterange.planned_duration, daterange.klass) == (1, "mid-roll")
    # Elsewhere the target duration is kept: 0–6 s, 6–8 s, then the break.
    assert [round(x, 1) for x in starts[:4]] == [0.0, 6.0, 8.0, 9.0]
    assert sum(1 for s in playlist.segments if s.dateranges) == 1


async def test_a_pre_roll_that_arrives_late_still_lands_on_its_boundaries(
    frames: list[Frame],
) -> None:
    """The relay reads the markers from the database just after connecting: some audio
    is already gathered, and the segment it belongs to is cut back at the marker."""
    playlist = await package(frames, [Marker(0, 2, "pre-roll"), Marker(3, 1)], late_by=2.5)
    starts = offsets(playlist)
    tags = [(s.cue_in, s.cue_out) for s in playlist.segments]
    assert tags[:4] == [(False, 2), (True, None), (False, 1), (True, None)]
    assert [round(x, 1) for x in starts[:5]] == [0.0, 2.0, 3.0, 4.0, 10.0]
    assert playlist.segments[0].dateranges[0].klass == "pre-roll"


async def test_back_to_back_breaks_render_cue_in_before_cue_out(frames: list[Frame]) -> None:
    playlist = await package(frames, [Marker(2, 2), Marker(4, 3)], segments=4)
    text = render_media_playlist(
        MediaPlaylist(6, 0, [s for s in playlist.segments if s.cue_in and s.cue_out])
    )
    assert text.index("#EXT-X-CUE-IN") < text.index("#EXT-X-CUE-OUT:DURATION=3")
    assert abs(offsets(playlist)[2] - 4) <= FRAME / 2
