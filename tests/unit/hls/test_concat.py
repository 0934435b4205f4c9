"""Joining tracks: real MP3 files (ID3v2 tag + LAME Info frame each) into one continuous
MP3 stream, and track renditions into one VOD playlist that a real HLS client plays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from hls.concat import Mp3Joiner, TrackReader, combined_manifest, join_uri
from hls.playlist import MediaPlaylist, Segment, parse_media_playlist, render_media_playlist
from hls.vod import segment_to_hls
from mediaserver.storage.filesystem import FileStore
from relay.mp3 import Frame, Mp3FrameReader
from tests.audio import decode, make_mp3

FRAME = 1152 / 44_100


@cache
def tracks() -> tuple[bytes, ...]:
    """Three files as a DJ would upload them: ID3v2 title tag, Info frame, then audio."""
    return (
        make_mp3(7.0, id3_title="Opener", frequency=330.0),
        make_mp3(5.0, id3_title="Night Drive", frequency=440.0),
        make_mp3(6.0, id3_title="Closer", frequency=550.0),
    )


def parse(data: bytes) -> tuple[list[Frame], Mp3FrameReader]:
    reader = Mp3FrameReader()
    return reader.feed(data) + reader.flush(), reader


def audio_of(data: bytes) -> list[bytes]:
    return [f.data for f in parse(data)[0] if not f.is_info_frame]


def join(files: tuple[bytes, ...], sizes: list[int] | None = None) -> tuple[bytes, Mp3Joiner]:
    """Join `files`, feeding each in chunks cycling through `sizes` (whole if None)."""
    joiner = Mp3Joiner()
    out = []
    for data in files:
        joiner.begin_track()
        chunk_sizes = sizes or [len(data)]
        pos, i = 0, 0
        while pos < len(data):
            size = chunk_sizes[i % len(chunk_sizes)]
            out.append(joiner.feed(data[pos : pos + size]))
            pos, i = pos + size, i + 1
        out.append(joiner.end_track())
    return b"".join(out), joiner


@pytest.fixture
def libav_errors() -> Iterator[list[Any]]:
    """libav log lines at ERROR or worse logged while the test runs."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs:
            yield logs
    finally:
        av.logging.set_level(previous)


def test_joined_stream_is_the_tracks_audio_frames_back_to_back(libav_errors: list[Any]) -> None:
    files = tracks()
    for data in files:  # what the joiner has to remove
        frames, reader = parse(data)
        assert data.startswith(b"ID3") and reader.tag_bytes > 0 and frames[0].is_info_frame

    out, joiner = join(files, [1000])

    frames, reader = parse(out)
    assert (reader.tag_bytes, reader.skipped_bytes) == (0, 0)  # no ID3, no junk at joins
    assert not any(f.is_info_frame for f in frames)
    assert [f.data for f in frames] == [a for data in files for a in audio_of(data)]
    assert joiner.frames == len(frames) and joiner.tracks == 3
    assert joiner.seconds == pytest.approx(len(frames) * FRAME)

    decoded = decode(out)
    track_audio = sum(len(audio_of(data)) for data in files) * FRAME
    print(f"\njoined: {decoded.duration:.3f} s decoded, tracks' audio {track_audio:.3f} s")
    assert abs(decoded.duration - track_audio) <= 3 * FRAME  # delay/padding are in frames
    assert decoded.frames == len(frames)
    assert libav_errors == []


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 5_000), min_size=1, max_size=5))
def test_joined_output_does_not_depend_on_chunking(sizes: list[int]) -> None:
    assert join(tracks(), sizes)[0] == join(tracks())[0]


def test_a_cut_off_track_does_not_bleed_into_the_next() -> None:
    first, second, _ = tracks()
    cut = first[: len(first) - 200]  # ends inside a frame
    out, joiner = join((cut, second))
    frames, reader = parse(out)
    assert reader.skipped_bytes == 0
    assert [f.data for f in frames] == audio_of(cut) + audio_of(second)
    assert joiner.skipped_bytes > 0  # the partial frame, dropped


def test_joiner_refuses_misuse() -> None:
    joiner = Mp3Joiner()
    with pytest.raises(RuntimeError):
        joiner.feed(b"\xff")
    with pytest.raises(RuntimeError):
        joiner.end_track()
    joiner.begin_track()
    with pytest.raises(RuntimeError):
        joiner.begin_track()


def test_track_reader_drops_header_frames_of_files_glued_together() -> None:
    first, second, _ = tracks()
    reader = TrackReader()
    frames = reader.feed(first + second) + reader.flush()
    assert [f.data for f in frames] == audio_of(first) + audio_of(second)
    assert reader.header_frame is not None
    assert reader.header_frame.data == parse(first)[0][0].data


# combined_manifest --------------------------------------------------------------------


def track_playlist(durations: list[float], discontinuity_at: int | None = None) -> MediaPlaylist:
    return MediaPlaylist(
        target_duration=10,
        media_sequence=0,
        segments=[
            Segment(f"segment_{n:05d}.ts", d, discontinuity=n == discontinuity_at)
            for n, d in enumerate(durations)
        ],
        playlist_type="VOD",
        endlist=True,
    )


def test_combined_manifest_round_trips_with_a_discontinuity_per_track() -> None:
    a = track_playlist([9.98, 9.98, 3.2])
    b = track_playlist([9.98, 1.5], discontinuity_at=1)  # a sample-rate change inside
    c = MediaPlaylist(7, 0, [Segment("segment_00000.ts", 6.5)], playlist_type="VOD")

    def uri_for(prefix: str, uri: str) -> str:
        return f"/v1/uploads/audio/{prefix}/hls/{uri}"

    combined = combined_manifest([("11", a), ("12", b), ("13", c)], uri_for)

    assert combined.target_duration == 10
    assert (combined.playlist_type, combined.endlist) == ("VOD", True)
    assert [s.uri for s in combined.segments] == [
        "/v1/uploads/audio/11/hls/segment_00000.ts",
        "/v1/uploads/audio/11/hls/segment_00001.ts",
        "/v1/uploads/audio/11/hls/segment_00002.ts",
        "/v1/uploads/audio/12/hls/segment_00000.ts",
        "/v1/uploads/audio/12/hls/segment_00001.ts",
        "/v1/uploads/audio/13/hls/segment_00000.ts",
    ]
    assert [s.discontinuity for s in combined.segments] == [False, False, False, True, True, True]
    text = render_media_playlist(combined)
    assert text.count("#EXT-X-DISCONTINUITY\n") == 3
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.endswith("#EXT-X-ENDLIST\n")
    assert parse_media_playlist(text) == combined


def test_combined_manifest_target_is_the_largest_and_empty_tracks_are_skipped() -> None:
    short = MediaPlaylist(4, 0, [Segment("a.ts", 4.0)], playlist_type="VOD", endlist=True)
    empty = MediaPlaylist(10, 0, [], playlist_type="VOD", endlist=True)
    long = MediaPlaylist(6, 0, [Segment("b.ts", 5.9)], playlist_type="VOD", endlist=True)
    combined = combined_manifest([("x", empty), ("y", short), ("z", long)])
    assert combined.target_duration == 6
    assert [(s.uri, s.discontinuity) for s in combined.segments] == [
        ("y/a.ts", False),
        ("z/b.ts", True),
    ]
    with pytest.raises(ValueError):
        combined_manifest([("x", empty)])


def test_join_uri_keeps_absolute_uris() -> None:
    assert join_uri("../42/hls/", "segment_00000.ts") == "../42/hls/segment_00000.ts"
    assert join_uri("", "s.ts") == "s.ts"
    assert join_uri("x", "https://cdn.example/s.ts") == "https://cdn.example/s.ts"
    assert join_uri("x", "/v1/s.ts") == "/v1/s.ts"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStore]:
    async with FileStore(tmp_path / "objects") as opened:
        yield opened


async def test_hls_client_plays_a_playlist_of_uploads_through_the_joins(
    store: FileStore, aiohttp_server: Any
) -> None:
    renditions = []
    for n, data in enumerate(tracks()):
        await store.put_bytes(f"uploads/{n}/source.mp3", data)
        result = await segment_to_hls(store, f"uploads/{n}/source.mp3", f"uploads/{n}/hls", 4)
        text = (await store.read(result.manifest_key)).decode()
        renditions.append((f"../{n}/hls", parse_media_playlist(text)))
    combined = combined_manifest(renditions)
    await store.put_bytes("uploads/playlist/stream.m3u8", render_media_playlist(combined).encode())
    app = web.Application()
    app.router.add_static("/media/", store.root)
    server = await aiohttp_server(app)
    url = str(server.make_url("/media/uploads/playlist/stream.m3u8"))

    played = await asyncio.to_thread(decode, url, format="hls")

    expected = sum(s.duration for s in combined.segments)
    print(f"\nHLS client played {played.duration:.3f} s of {expected:.3f} s over 3 tracks")
    assert abs(played.duration - expected) <= 0.1
    assert [s.discontinuity for s in combined.segments].count(True) == 2
