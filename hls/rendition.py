"""One lossy rendition of the ladder: an encoder whose packets are muxed twice, to a
progressive file and to HLS MPEG-TS segments, so the audio is encoded once per rendition.

`AvEncode` encodes with PyAV (AAC, and MP3 when the system has no LAME) and muxes each
packet into the progressive MP4/MP3 file and the current segment's TS muxer. `LameEncode`
encodes MP3 with the system's LAME (`hls/lame.py`), writes the frames as they come to the
`.mp3` file and packages them into TS segments with `hls/packager.TsSegmenter`.
`SegmentList` cuts the segments the same way for both and writes the media playlist.

Blocking (codec work): runs in the ladder's worker thread.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Protocol

import av
import numpy as np
import numpy.typing as npt
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.packet import Packet

from hls.lame import Lame
from hls.packager import TsSegmenter
from hls.playlist import MediaPlaylist, Segment, render_media_playlist
from relay.mp3 import Mp3FrameReader

INDEX_NAME = "index.m3u8"
#: PTS of the first sample in every rendition's segments (libavformat's mpegts muxer adds
#: its max_delay, 0.7 s, to PyAV's packets; `LameEncode` starts its segmenter there too).
START_PTS = 63_000
_MAX_DELAY_US = 700_000

# libavformat's mpegts muxer repeats PAT/PMT every 0.1 s by default; each segment is muxed
# by a fresh muxer that writes the tables first (RFC 8216 §3.2), so once is enough.
# max_delay as ffmpeg's -muxdelay default: the muxer gathers audio packets into PES of up
# to 0.35 s (half of it); libavformat's own default (-1) makes one PES per AAC or MP3
# packet, which doubles a 64 kbit/s rendition with TS padding.
_TS_OPTIONS = {"pat_period": "3600", "sdt_period": "3600", "max_delay": str(_MAX_DELAY_US)}
# The progressive MP4 starts with its moov box, so players can start before the download
# ends (the mp4 muxer rewrites the file once when it is closed).
_MP4_OPTIONS = {"movflags": "+faststart"}


@dataclass(frozen=True, slots=True)
class EncodeSpec:
    """What to encode: codec, bit rate, the progressive container and the names."""

    quality: str  # low | medium | high
    name: str  # mp3_128: the HLS directory and the progressive file's stem
    encoder: str  # libmp3lame | aac (PyAV's encoder names)
    codec: str  # mp3 | aac
    bitrate_kbps: int
    format: str  # mp3 | m4a (the progressive file's extension)
    muxer: str  # mp3 | mp4
    codecs: str  # RFC 6381 CODECS attribute

    @property
    def file_name(self) -> str:
        return f"{self.name}.{self.format}"


@dataclass(frozen=True, slots=True)
class EncodeResult:
    """A finished rendition: its files and what its segments cost to stream."""

    spec: EncodeSpec
    size_bytes: int  # the progressive file
    bandwidth: int  # peak segment bit rate (RFC 8216 §4.3.4.2 BANDWIDTH)
    average_bandwidth: int
    seconds: float  # audio in the segments


class Encode(Protocol):
    """What the ladder drives: every frame in, then `finish` (or `close` on failure)."""

    def feed(self, frame: AudioFrame, planes: npt.NDArray[np.float32]) -> None: ...
    def finish(self) -> EncodeResult: ...
    def close(self) -> None: ...


class SegmentList:
    """Where the segments of one rendition are cut, their sizes, and its playlist.

    A segment starts at the first packet at or past each multiple of `segment_seconds`,
    except within half a segment of the end (`expected_seconds`), so the last segment is
    never a sliver whose TS tables would inflate the peak bandwidth.
    """

    def __init__(self, folder: Path, segment_seconds: int, expected_seconds: float) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.segment_seconds = segment_seconds
        self.last_cut = max(0.0, expected_seconds - segment_seconds / 2)
        self.segments: list[Segment] = []
        self.sizes: list[int] = []
        self._next_cut = 0.0

    def due(self, start: float) -> bool:
        """Whether a packet starting at `start` seconds opens a new segment."""
        return not self.segments or self._next_cut <= start < self.last_cut

    def begin(self, start: float) -> Path:
        """A new segment from `start` seconds: its path."""
        name = f"segment{len(self.segments):03d}.ts"
        self.segments.append(Segment(uri=name, duration=0.0))
        step = self.segment_seconds
        self._next_cut = (math.floor(max(0.0, start) / step) + 1) * float(step)
        return self.folder / name

    def end(self, seconds: float) -> None:
        """The current segment is complete on disk and holds `seconds` of audio."""
        last = self.segments[-1]
        self.segments[-1] = Segment(uri=last.uri, duration=seconds)
        self.sizes.append((self.folder / last.uri).stat().st_size)

    def finish(self, spec: EncodeSpec, progressive: Path) -> EncodeResult:
        """Write the VOD media playlist; the rendition's figures."""
        target = max(1, math.ceil(max((s.duration for s in self.segments), default=1.0)))
        playlist = MediaPlaylist(
            target_duration=target,
            media_sequence=0,
            segments=self.segments,
            playlist_type="VOD",  # RFC 8216 §4.3.3.5
            endlist=True,
        )
        (self.folder / INDEX_NAME).write_text(render_media_playlist(playlist))
        seconds = sum(s.duration for s in self.segments)
        rates = [
            size * 8 / s.duration
            for size, s in zip(self.sizes, self.segments, strict=True)
            if s.duration > 0
        ]
        return EncodeResult(
            spec=spec,
            size_bytes=progressive.stat().st_size,
            bandwidth=math.ceil(max(rates, default=0.0)),
            average_bandwidth=math.ceil(sum(self.sizes) * 8 / seconds) if seconds else 0,
            seconds=seconds,
        )


class AvEncode:
    """A PyAV encoder; every packet muxed to `<name>.<format>` and `<name>/segmentNNN.ts`."""

    def __init__(
        self, spec: EncodeSpec, out_dir: Path, *, rate: int, layout: str, segments: SegmentList
    ) -> None:
        self.spec = spec
        self.path = out_dir / spec.file_name
        options = _MP4_OPTIONS if spec.muxer == "mp4" else {}
        self.output: OutputContainer = av.open(
            os.fspath(self.path), "w", format=spec.muxer, options=options
        )
        stream = self.output.add_stream(spec.encoder, rate=rate)
        assert isinstance(stream, AudioStream)
        self.stream = stream
        context = self.stream.codec_context
        context.layout = layout
        context.format = "fltp"
        context.bit_rate = spec.bitrate_kbps * 1000
        context.time_base = Fraction(1, rate)
        self.segments = segments
        self._ts: OutputContainer | None = None
        self._ts_stream: AudioStream | None = None
        self._ts_seconds = 0.0

    def feed(self, frame: AudioFrame | None, planes: object = None) -> None:
        """Encode `frame` (None flushes the encoder) and mux what comes out."""
        for packet in self.stream.encode(frame):
            self._mux(packet)

    def finish(self) -> EncodeResult:
        """Flush, close every file and write the media playlist."""
        self.feed(None)
        self._close_segment()
        self.output.close()
        return self.segments.finish(self.spec, self.path)

    def close(self) -> None:
        """Release the files after a failure (finish closes them otherwise)."""
        for output in (self._ts, self.output):
            if output is not None:
                try:
                    output.close()
                except av.error.FFmpegError:
                    pass

    def _mux(self, packet: Packet[AudioStream]) -> None:
        tb = packet.time_base
        # Seconds in float arithmetic: Fraction objects per packet cost more than the muxing.
        scale = tb.numerator / tb.denominator
        start = packet.pts * scale if packet.pts is not None else 0.0
        copy = Packet(bytes(packet))  # muxing takes the packet's data: one copy per output
        copy.pts, copy.dts, copy.duration, copy.time_base = (
            packet.pts,
            packet.dts,
            packet.duration,
            tb,
        )
        # First to the progressive file: its first packet starts the encoder's stream,
        # whose parameters (AAC's AudioSpecificConfig) the segments' streams copy.
        self.output.mux_one(packet)
        if self._ts is None or self.segments.due(start):
            self._close_segment()
            path = self.segments.begin(start)
            self._ts = av.open(os.fspath(path), "w", format="mpegts", options=_TS_OPTIONS)
            self._ts_stream = self._ts.add_stream_from_template(self.stream)
            self._ts_seconds = 0.0
        self._ts_seconds += copy.duration * scale if copy.duration else 0.0
        assert self._ts_stream is not None
        copy.stream = self._ts_stream
        self._ts.mux_one(copy)

    def _close_segment(self) -> None:
        if self._ts is not None:
            self._ts.close()
            self._ts = None
            self.segments.end(self._ts_seconds)


class LameEncode:
    """MP3 with the system's LAME: the frames go to `<name>.mp3` as they come (its first
    frame rewritten with LAME's Info tag at the end) and to TS segments."""

    def __init__(
        self, spec: EncodeSpec, out_dir: Path, lame: Lame, *, rate: int, segments: SegmentList
    ) -> None:
        self.spec = spec
        self.path = out_dir / spec.file_name
        self.lame = lame
        self.rate = rate
        self.segments = segments
        self.file: BinaryIO = open(self.path, "wb")
        self.reader = Mp3FrameReader()
        self.ts: TsSegmenter | None = None
        self._pending: list[bytes] = []
        self._samples = 0  # in the frames handed to segments so far
        self._first = True

    def feed(self, frame: AudioFrame | None, planes: npt.NDArray[np.float32]) -> None:
        self._take(self.lame.encode(planes))

    def finish(self) -> EncodeResult:
        self._take(self.lame.flush())
        self._frames([frame.data for frame in self.reader.flush()])
        self._write_segment()
        tag = self.lame.lametag()
        if tag:
            self.file.seek(0)  # LAME sized its placeholder frame for this tag
            self.file.write(tag)
        self.file.close()
        self.lame.close()
        return self.segments.finish(self.spec, self.path)

    def close(self) -> None:
        self.file.close()
        self.lame.close()

    def _take(self, data: bytes) -> None:
        if data:
            self.file.write(data)
            frames = self.reader.feed(data)
            if self._first and frames:
                self._first = False
                if frames[0].is_info_frame:  # the Info tag is for files, not segments
                    frames = frames[1:]
            self._frames([frame.data for frame in frames])

    def _frames(self, frames: list[bytes]) -> None:
        if frames and self.ts is None:
            samples_per_frame = 1152 if self.rate >= 32_000 else 576  # MPEG-1 or -2 Layer III
            self.ts = TsSegmenter(
                self.rate, samples_per_frame, start_pts=START_PTS, timed_id3=False
            )
        assert self.ts is not None or not frames
        for data in frames:
            assert self.ts is not None
            start = (self.ts.samples + len(self._pending) * self.ts.samples_per_frame) / self.rate
            if self.segments.due(start):
                self._write_segment()
                self.segments.begin(start)
            self._pending.append(data)

    def _write_segment(self) -> None:
        if not self._pending or self.ts is None:
            return
        before = self.ts.samples
        data = self.ts.package(self._pending)
        (self.segments.folder / self.segments.segments[-1].uri).write_bytes(data)
        self.segments.end((self.ts.samples - before) / self.rate)
        self._pending = []
