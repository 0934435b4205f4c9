"""Media playlist model, renderer, parser and the live segment window (RFC 8216)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hls.playlist import (
    DateRange,
    MediaPlaylist,
    Segment,
    parse_media_playlist,
    render_media_playlist,
)
from hls.window import SegmentWindow

T0 = datetime(2024, 5, 1, 20, 0, 0, tzinfo=UTC)

LIVE_GOLDEN = """\
#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:1042
#EXT-X-DISCONTINUITY-SEQUENCE:3
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T20:00:00.000Z
#EXTINF:6.000,DJ Nova - Night Drive
1042.ts
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T22:00:06.250+02:00
#EXT-X-DATERANGE:ID="break-7",CLASS="com.example.ad",START-DATE="2024-05-01T20:00:06.250Z",\
DURATION=30,PLANNED-DURATION=30.5,SCTE35-OUT=0xFC3025
#EXT-X-CUE-OUT:DURATION=30
#EXTINF:5.967,Line one line two
1043.ts
#EXT-X-CUE-IN
#EXTINF:6.001,
1044.ts
"""


def live_playlist() -> MediaPlaylist:
    plus_two = timezone(timedelta(hours=2))
    ad = DateRange(
        id="break-7",
        start_date=T0 + timedelta(seconds=6.25),
        duration=30.0,
        planned_duration=30.5,
        scte35_out="0xFC3025",
        scte35_in=None,
        klass="com.example.ad",
    )
    return MediaPlaylist(
        target_duration=6,
        media_sequence=1042,
        discontinuity_sequence=3,
        segments=(
            Segment("1042.ts", 6.0, program_date_time=T0, title="DJ Nova - Night Drive"),
            Segment(
                "1043.ts",
                5.967,
                program_date_time=(T0 + timedelta(seconds=6.25)).astimezone(plus_two),
                discontinuity=True,
                title="Line one\r\nline two",
                cue_out=30.0,
                dateranges=(ad,),
            ),
            Segment("1044.ts", 6.0009, cue_in=True),
        ),
    )


def test_live_playlist_renders_every_tag_in_order() -> None:
    assert render_media_playlist(live_playlist()) == LIVE_GOLDEN


def test_vod_playlist_golden() -> None:
    playlist = MediaPlaylist(
        target_duration=10,
        media_sequence=0,
        segments=(Segment("a/0.ts", 9.5), Segment("a/1.ts", 2.25)),
        playlist_type="VOD",
        endlist=True,
        independent_segments=False,
    )
    assert render_media_playlist(playlist) == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:9.500,\na/0.ts\n#EXTINF:2.250,\na/1.ts\n"
        "#EXT-X-ENDLIST\n"
    )


@pytest.mark.parametrize("duration", [6.5, 6.4996, 7.0])
def test_segment_longer_than_target_duration_is_refused(duration: float) -> None:
    # §4.3.3.1, on the rendered value: 6.4996 is written 6.500, which rounds to 7.
    playlist = MediaPlaylist(6, 0, (Segment("0.ts", duration),))
    with pytest.raises(ValueError, match="TARGETDURATION"):
        render_media_playlist(playlist)


def test_segment_rounding_down_to_target_is_accepted() -> None:
    text = render_media_playlist(MediaPlaylist(6, 0, (Segment("0.ts", 6.499),)))
    assert "#EXTINF:6.499,\n0.ts\n" in text


@pytest.mark.parametrize(
    "playlist",
    [
        MediaPlaylist(6, 0, (Segment("0.ts", 6.0, program_date_time=datetime(2024, 1, 1)),)),
        MediaPlaylist(6, 0, (Segment("0.ts", 6.0, dateranges=(DateRange("x", T0),)),)),
        MediaPlaylist(
            6, 0, (Segment("0.ts", 6, program_date_time=T0, dateranges=(DateRange('"', T0),)),)
        ),
        MediaPlaylist(6, 0, (Segment("0.ts\n#EXT-X-ENDLIST", 6.0),)),
        MediaPlaylist(6, 0, (Segment("0.ts", 6.0),), version=2),
        MediaPlaylist(6, 0, (Segment("0.ts", -1.0),)),
    ],
    ids=["naive-date", "daterange-without-date", "quote-in-id", "uri-newline", "v2", "negative"],
)
def test_playlists_breaking_rfc_8216_are_refused(playlist: MediaPlaylist) -> None:
    with pytest.raises(ValueError):
        render_media_playlist(playlist)


def test_render_parse_round_trip() -> None:
    playlist = live_playlist()
    parsed = parse_media_playlist(render_media_playlist(playlist))
    assert parsed.segments[1].title == "Line one line two"  # CR/LF were replaced on output
    assert parsed.segments[2].duration == 6.001  # three decimals on output
    expected_segments = (
        playlist.segments[0],
        replace(playlist.segments[1], title="Line one line two"),
        Segment("1044.ts", 6.001, cue_in=True),
    )
    assert parsed == MediaPlaylist(
        target_duration=6,
        media_sequence=1042,
        discontinuity_sequence=3,
        segments=expected_segments,
    )
    assert render_media_playlist(parsed) == LIVE_GOLDEN


def test_parser_reads_a_third_party_vod_manifest() -> None:
    text = (
        "#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-ALLOW-CACHE:YES\r\n"
        "## a comment\r\n#EXT-X-PLAYLIST-TYPE:VOD\r\n\r\n#EXTINF:4,\r\nseg0.ts\r\n"
        "#EXT-X-DISCONTINUITY\r\n#EXTINF:3.2,intro, part 2\r\nhttps://cdn.example/seg1.ts\r\n"
        "#EXT-X-ENDLIST\r\n"
    )
    playlist = parse_media_playlist(text)
    assert playlist == MediaPlaylist(
        target_duration=4,
        media_sequence=0,
        segments=(
            Segment("seg0.ts", 4.0),
            Segment("https://cdn.example/seg1.ts", 3.2, discontinuity=True, title="intro, part 2"),
        ),
        playlist_type="VOD",
        endlist=True,
        independent_segments=False,
    )


def test_stored_vod_manifests_concatenate_with_discontinuities() -> None:
    first = render_media_playlist(
        MediaPlaylist(6, 0, (Segment("t1/0.ts", 6.0), Segment("t1/1.ts", 1.5)), endlist=True)
    )
    second = render_media_playlist(MediaPlaylist(4, 0, (Segment("t2/0.ts", 4.0),), endlist=True))
    tracks = [parse_media_playlist(first), parse_media_playlist(second)]
    segments = [
        replace(s, discontinuity=index > 0 and position == 0)
        for index, track in enumerate(tracks)
        for position, s in enumerate(track.segments)
    ]
    combined = MediaPlaylist(
        target_duration=max(t.target_duration for t in tracks),
        media_sequence=0,
        segments=segments,
        playlist_type="VOD",
        endlist=True,
    )
    assert render_media_playlist(combined).endswith(
        "#EXTINF:1.500,\nt1/1.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:4.000,\nt2/0.ts\n#EXT-X-ENDLIST\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        "#EXT-X-TARGETDURATION:6\n#EXTINF:6,\n0.ts\n",
        "#EXTM3U\n#EXTINF:6,\n0.ts\n",
        "#EXTM3U\n#EXT-X-TARGETDURATION:6\n0.ts\n",
        '#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-DATERANGE:CLASS="x"\n#EXTINF:6,\n0.ts\n',
        "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:six,\n0.ts\n",
    ],
    ids=["no-extm3u", "no-target", "no-extinf", "daterange-without-id", "bad-duration"],
)
def test_parser_rejects_malformed_playlists(text: str) -> None:
    with pytest.raises(ValueError):
        parse_media_playlist(text)


def _window_with(durations: list[float], **kwargs: int) -> SegmentWindow:
    window = SegmentWindow(6, **kwargs)
    for n, duration in enumerate(durations):
        window.append(Segment("", duration), f"ts{n}".encode())
    return window


def test_window_keeps_the_last_segments_and_evicts_the_oldest() -> None:
    window = SegmentWindow(6)
    evicted = [window.append(Segment("", 6.0), bytes([n])) for n in range(8)]
    assert [[e.sequence for e in batch] for batch in evicted] == [[]] * 6 + [[0], [1]]
    assert (len(window), window.media_sequence, window.next_sequence) == (6, 2, 8)
    text = render_media_playlist(window.playlist(lambda seq: f"/v1/streams/7/hls/{seq}.ts"))
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n")
    assert "#EXT-X-MEDIA-SEQUENCE:2\n" in text
    assert text.endswith("#EXTINF:6.000,\n/v1/streams/7/hls/7.ts\n")
    assert "ENDLIST" not in text and "DISCONTINUITY-SEQUENCE" not in text


def test_window_never_shrinks_below_three_target_durations() -> None:
    # §6.2.2: 2 s segments with a 6 s target: at least 18 s stay, i.e. 9 segments, not 6.
    window = _window_with([2.0] * 20)
    assert len(window) == 9 and window.duration == 18.0
    assert len(_window_with([6.0] * 5, size=1)) == 3


def test_discontinuity_sequence_counts_discontinuities_that_left_the_window() -> None:
    window = SegmentWindow(6, size=3)
    for n in range(8):
        window.append(Segment("", 6.0, discontinuity=n in (1, 2, 6)), b"")
        assert window.discontinuity_sequence == {0: 0, 1: 0, 2: 0, 3: 0, 4: 1, 5: 2}.get(n, 2)
    playlist = window.playlist(str)
    assert [s.discontinuity for s in playlist.segments] == [False, True, False]  # 5, 6, 7
    text = render_media_playlist(playlist)
    assert "#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-DISCONTINUITY-SEQUENCE:2\n" in text
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1


def test_lookup_serves_live_segments_and_recently_evicted_ones_then_forgets() -> None:
    window = _window_with([6.0] * 7)  # segment 0 left the playlist when 6 arrived
    entry = window.get(3)
    assert entry is not None and (entry.sequence, entry.payload) == (3, b"ts3")
    assert window.get(7) is None  # not produced yet
    # §6.2.2: an evicted segment stays available for its duration plus the playlist's
    # (6 + 42 s here) so a client holding the previous playlist can still fetch it.
    for n in range(7, 15):
        old = window.get(0)
        assert old is not None and old.payload == b"ts0"
        window.append(Segment("", 6.0), f"ts{n}".encode())
    assert window.get(0) is None  # the origin answers 404
    assert window.get(1) is not None


def test_window_refuses_segments_the_playlist_could_not_announce() -> None:
    window = SegmentWindow(6)
    with pytest.raises(ValueError, match="TARGETDURATION"):
        window.append(Segment("", 6.6), b"")
    with pytest.raises(ValueError):
        window.append(Segment("", 0.0), b"")
    assert window.next_sequence == 0


def test_window_can_continue_numbering_after_a_restart() -> None:
    window = SegmentWindow(6, first_sequence=500, discontinuity_sequence=4)
    assert (window.media_sequence, window.discontinuity_sequence) == (500, 4)
    window.append(Segment("", 6.0, discontinuity=True), b"x")
    playlist = window.playlist(lambda seq: f"{seq}.ts", endlist=True)
    assert playlist.segments == (Segment("500.ts", 6.0, discontinuity=True),)
    assert render_media_playlist(playlist).endswith(
        "#EXT-X-DISCONTINUITY\n#EXTINF:6.000,\n500.ts\n#EXT-X-ENDLIST\n"
    )
