"""Joining tracks (sans-IO): MP3 files into one continuous frame stream, and track playlists
into one VOD media playlist with a discontinuity between tracks.

Pure: no I/O, no asyncio, no PyAV. The async shells (playlist routes, the VOD segmenter)
move bytes between the object store and these classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from hls.playlist import MediaPlaylist, Segment
from relay.mp3 import Frame, Mp3FrameReader


class TrackReader:
    """The audio frames of one MP3 file: ID3v2/ID3v1 tags are skipped by `Mp3FrameReader`,
    Xing/Info/LAME and VBRI header frames are dropped (they decode as a frame of silence),
    garbage is resynced over and counted in `reader.skipped_bytes`.

    `header_frame` keeps the first header frame seen before any audio: the file's own
    Xing/Info tag. Checking every frame for a header tag would cost as much as muxing it,
    so frames are checked only where a header frame can be: up to the first audio frame,
    and after a tag or garbage (another file's start inside this one, as `cat a.mp3 b.mp3`
    makes). A header frame glued to the previous file's last frame with neither between
    is kept; it plays as one frame of silence, as it does in ffmpeg.
    """

    def __init__(self) -> None:
        self.reader = Mp3FrameReader()
        self.header_frame: Frame | None = None
        self.audio_frames = 0
        self._check_next = True  # the next frames may follow a tag, garbage or the start

    def feed(self, data: bytes) -> list[Frame]:
        """Consume `data`; return the audio frames it completes, in stream order."""
        reader = self.reader
        before = reader.tag_bytes + reader.skipped_bytes
        frames = reader.feed(data)
        event = reader.tag_bytes + reader.skipped_bytes != before
        return self._audio(frames, event)

    def flush(self) -> list[Frame]:
        """End of file: the last frame if it is complete (a cut-off one is dropped)."""
        return self._audio(self.reader.flush(), event=True)

    def _audio(self, frames: list[Frame], event: bool) -> list[Frame]:
        if not frames:
            self._check_next = self._check_next or event
            return frames
        if self._check_next or event or not self.audio_frames:
            kept = []
            for frame in frames:
                if not frame.is_info_frame:
                    kept.append(frame)
                elif self.header_frame is None and not self.audio_frames and not kept:
                    self.header_frame = frame
            frames = kept
        # The event may have come after this batch's last frame: check the next one too.
        self._check_next = event
        self.audio_frames += len(frames)
        return frames


class Mp3Joiner:
    """Successive MP3 files in, one continuous MP3 stream of audio frames out.

    At every file start the ID3v2 tag and the Xing/Info/LAME or VBRI header frame are
    dropped (a player would otherwise hear a silent frame, or take the first file's header
    as the length of the whole stream); ID3v1 tags and garbage are dropped everywhere.
    Each file gets a fresh frame reader, so a cut-off last frame never merges with the next
    file's first bytes.

        joiner = Mp3Joiner()
        for track in tracks:
            joiner.begin_track()
            for chunk in track:
                send(joiner.feed(chunk))
            send(joiner.end_track())
    """

    def __init__(self) -> None:
        self._track: TrackReader | None = None
        self.tracks = 0
        self.frames = 0  # audio frames emitted
        self.seconds = 0.0  # nominal duration of the frames emitted
        self.skipped_bytes = 0  # garbage dropped, over all tracks

    def begin_track(self) -> None:
        """Start the next file (after `end_track()` of the previous one)."""
        if self._track is not None:
            raise RuntimeError("end_track() the current track before beginning the next")
        self._track = TrackReader()
        self.tracks += 1

    def feed(self, data: bytes) -> bytes:
        """The next bytes of the current file; returns the frame bytes ready to send."""
        if self._track is None:
            raise RuntimeError("begin_track() before feeding data")
        return self._emit(self._track.feed(data))

    def end_track(self) -> bytes:
        """End of the current file: its last complete frame, if it was held back."""
        if self._track is None:
            raise RuntimeError("no track to end")
        track, self._track = self._track, None
        out = self._emit(track.flush())
        self.skipped_bytes += track.reader.skipped_bytes
        return out

    def _emit(self, frames: list[Frame]) -> bytes:
        if not frames:
            return b""
        self.frames += len(frames)
        self.seconds += sum(f.header.samples_per_frame / f.header.sample_rate for f in frames)
        return b"".join([f.data for f in frames])


def join_uri(track_prefix: str, segment_uri: str) -> str:
    """The default `uri_for`: a segment URI relative to its track's prefix, made relative
    to the combined playlist (`"../42/hls"` + `"segment000.ts"`). Absolute URIs
    (with a scheme, or rooted) are kept as they are (RFC 3986 §5.2)."""
    if "://" in segment_uri or segment_uri.startswith("/"):
        return segment_uri
    return f"{track_prefix.rstrip('/')}/{segment_uri}" if track_prefix else segment_uri


def combined_manifest(
    tracks: Sequence[tuple[str, MediaPlaylist]],
    uri_for: Callable[[str, str], str] = join_uri,
) -> MediaPlaylist:
    """One VOD playlist playing `tracks` (`(track_prefix, track playlist)`) in order.

    Segment URIs become `uri_for(track_prefix, uri)`. Each track after the first starts
    with `#EXT-X-DISCONTINUITY` (RFC 8216 §4.3.2.3: timestamps restart and the encoding
    may change); discontinuities inside a track are kept. The target duration is the
    largest of the tracks' (§4.3.3.1). Tracks without segments are left out; ValueError
    when nothing is left.
    """
    segments: list[Segment] = []
    target = 1
    version = 3
    independent = True
    for prefix, playlist in tracks:
        if not playlist.segments:
            continue
        target = max(target, playlist.target_duration)
        version = max(version, playlist.version)
        independent = independent and playlist.independent_segments
        later = bool(segments)  # not the first track: a discontinuity before it
        for n, segment in enumerate(playlist.segments):
            segments.append(
                dataclasses.replace(
                    segment,
                    uri=uri_for(prefix, segment.uri),
                    discontinuity=segment.discontinuity or (later and n == 0),
                )
            )
    if not segments:
        raise ValueError("a combined playlist needs at least one segment")
    return MediaPlaylist(
        target_duration=target,
        media_sequence=0,
        segments=tuple(segments),
        version=version,
        playlist_type="VOD",  # §4.3.3.5: the tracks never change once segmented
        endlist=True,  # §4.3.3.4
        independent_segments=independent,
    )
