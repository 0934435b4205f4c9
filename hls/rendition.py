"""One lossy rendition of the ladder: an encoder whose packets are muxed twice, to a
progressive file and to HLS MPEG-TS segments, so the audio is encoded once per rendition.

Blocking (PyAV): runs in the ladder's worker thread.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.packet import Packet

from hls.playlist import MediaPlaylist, Segment, render_media_playlist

INDEX_NAME = "index.m3u8"

# libavformat's mpegts muxer repeats PAT/PMT every 0.1 s by default; each segment is muxed
# by a fresh muxer that writes the tables first (RFC 8216 §3.2), so once is enough.
# max_delay as ffmpeg's -muxdelay default: the muxer gathers audio packets into PES of up
# to 0.35 s (half of it); libavformat's own default (-1) makes one PES per AAC or MP3
# packet, which doubles a 64 kbit/s rendition with TS padding. The PTS run 0.7 s ahead.
_TS_OPTIONS = {"pat_period": "3600", "sdt_period": "3600", "max_delay": "700000"}
# The progressive MP4 starts with its moov box, so players can start before the download
# ends (the mp4 muxer rewrites the file once when it is closed).
_MP4_OPTIONS = {"movflags": "+faststart"}


@dataclass(frozen=True, slots=True)
class EncodeSpec:
    """What to encode: codec, bit rate, the progressive container and the names."""

    quality: str  # low | medium | high
    name: str  # mp3_128: the HLS directory and the progressive file's stem
    encoder: str  # libmp3lame | aac
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


class Encode:
    """Encodes frames (fltp at the ladder's rate and layout) and muxes every packet to
    `<name>.<format>` and to `<name>/segmentNNN.ts`; `finish` writes `<name>/index.m3u8`.

    A segment is cut before the first packet at or past each multiple of
    `segment_seconds`, except within half a segment of the end (`expected_seconds`), so the
    last segment is never a sliver whose TS tables would inflate the peak bandwidth.
    """

    def __init__(
        self,
        spec: EncodeSpec,
        out_dir: Path,
        *,
        rate: int,
        layout: str,
        segment_seconds: int,
        expected_seconds: float,
    ) -> None:
        self.spec = spec
        self.hls_dir = out_dir / spec.name
        self.hls_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / spec.file_name
        options = _MP4_OPTIONS if spec.muxer == "mp4" else {}
        self.output: OutputContainer = av.open(
            os.fspath(self.path), "w", format=spec.muxer, options=options
        )
        self.stream: AudioStream = self.output.add_stream(spec.encoder, rate=rate)
        context = self.stream.codec_context
        context.layout = layout
        context.format = "fltp"
        context.bit_rate = spec.bitrate_kbps * 1000
        context.time_base = Fraction(1, rate)
        self.segment_seconds = segment_seconds
        self.last_cut = max(0.0, expected_seconds - segment_seconds / 2)
        self.segments: list[Segment] = []
        self.segment_bytes: list[int] = []
        self._ts: OutputContainer | None = None
        self._ts_stream: AudioStream | None = None
        self._ts_seconds = 0.0
        self._next_cut = 0.0

    def feed(self, frame: AudioFrame | None) -> None:
        """Encode `frame` (None flushes the encoder) and mux what comes out."""
        for packet in self.stream.encode(frame):
            self._mux(packet)

    def finish(self) -> EncodeResult:
        """Flush, close every file and write the media playlist."""
        self.feed(None)
        self._close_segment()
        self.output.close()
        target = max(1, math.ceil(max((s.duration for s in self.segments), default=1.0)))
        playlist = MediaPlaylist(
            target_duration=target,
            media_sequence=0,
            segments=self.segments,
            playlist_type="VOD",
            endlist=True,
        )
        (self.hls_dir / INDEX_NAME).write_text(render_media_playlist(playlist))
        seconds = sum(s.duration for s in self.segments)
        rates = [
            n * 8 / s.duration
            for n, s in zip(self.segment_bytes, self.segments, strict=True)
            if s.duration > 0
        ]
        return EncodeResult(
            spec=self.spec,
            size_bytes=self.path.stat().st_size,
            bandwidth=math.ceil(max(rates, default=0.0)),
            average_bandwidth=math.ceil(sum(self.segment_bytes) * 8 / seconds) if seconds else 0,
            seconds=seconds,
        )

    def close(self) -> None:
        """Release the files after a failure (finish closes them otherwise)."""
        for output in (self._ts, self.output):
            if output is not None:
                try:
                    output.close()
                except av.error.FFmpegError:
                    pass

    def _mux(self, packet: Packet) -> None:
        tb = packet.time_base
        start = float(packet.pts * tb) if packet.pts is not None else self._next_cut
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
        if self._ts is None or (self._next_cut <= start < self.last_cut):
            self._open_segment(start)
        assert self._ts is not None
        self._ts_seconds += float(packet.duration * tb) if packet.duration else 0.0
        copy.stream = self._ts_stream
        self._ts.mux_one(copy)

    def _open_segment(self, start: float) -> None:
        self._close_segment()
        name = f"segment{len(self.segments):03d}.ts"
        self._ts = av.open(
            os.fspath(self.hls_dir / name), "w", format="mpegts", options=_TS_OPTIONS
        )
        self._ts_stream = self._ts.add_stream_from_template(self.stream)
        self._ts_seconds = 0.0
        self.segments.append(Segment(uri=name, duration=0.0))
        self._next_cut = (math.floor(max(0.0, start) / self.segment_seconds) + 1) * float(
            self.segment_seconds
        )

    def _close_segment(self) -> None:
        if self._ts is None:
            return
        self._ts.close()
        self._ts = None
        last = self.segments[-1]
        self.segments[-1] = Segment(uri=last.uri, duration=self._ts_seconds)
        self.segment_bytes.append((self.hls_dir / last.uri).stat().st_size)
