"""STAND-IN for the ladder branch's `hls/ladder.py` (replaced at merge; the real one wins).

Same interface: `probe_audio` recognises the audio by parsing it (PyAV), `build_ladder`
writes the renditions, master playlist, waveform and artwork into a local directory,
`make_artwork` makes the JPEG thumbnail. This stand-in only encodes MP3 128 kbps (as HLS
and as a progressive file) plus, for lossless sources, a FLAC file; its waveform and
loudness are rough. Everything here blocks: call it from a worker thread.
"""

from __future__ import annotations

import io
import json
import math
import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

_FORMATS = {
    "mp3": "mp3",
    "wav": "wav",
    "flac": "flac",
    "ogg": "ogg",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "aac": "aac",
    "aiff": "aiff",
}
_LOSSLESS = ("pcm_", "flac", "alac")
_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
)
_PEAKS = 1800
_RATE = 44_100


class NotAudio(ValueError):
    """The file is not audio in an accepted format; `detected` names what it looks like."""

    def __init__(self, message: str, detected: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detected = detected


class CorruptAudio(ValueError):
    """The file is audio but cannot be decoded (truncated, damaged)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotImage(ValueError):
    """The artwork is not an image PyAV can decode."""


@dataclass(frozen=True)
class SourceInfo:
    format: str
    codec: str
    sample_rate: int
    channels: int
    bitrate_kbps: int | None
    duration_seconds: float
    lossless: bool


@dataclass(frozen=True)
class Rendition:
    quality: str
    format: str
    codec: str
    bitrate_kbps: int | None
    hls_dir: str | None
    file_name: str
    size_bytes: int
    bandwidth: int
    codecs: str


@dataclass(frozen=True)
class LadderResult:
    renditions: list[Rendition] = field(default_factory=list)
    master_name: str = "master.m3u8"
    waveform_name: str = "waveform.json"
    artwork_name: str | None = None
    duration_seconds: float = 0.0
    loudness_lufs: float | None = None


def _detected(path: str | os.PathLike[str]) -> str | None:
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        return "an empty file"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def probe_audio(path: str | os.PathLike[str]) -> SourceInfo:
    """What the file is, by parsing it: NotAudio / CorruptAudio otherwise."""
    detected = _detected(path)
    if detected is not None:
        raise NotAudio(f"Not an audio file: it looks like {detected}.", detected)
    try:
        container = av.open(str(path))
    except av.error.FFmpegError:
        raise NotAudio("Not an audio file in a supported format.", None) from None
    with container:
        fmt = _FORMATS.get(container.format.name)
        if fmt is None or not container.streams.audio:
            found = container.format.long_name or container.format.name
            raise NotAudio(f"Not a supported audio file: it looks like {found}.", found)
        stream = container.streams.audio[0]
        decoded = 0
        try:
            for frame in container.decode(stream):
                decoded += frame.samples
                if decoded >= stream.codec_context.sample_rate:
                    break
        except av.error.FFmpegError as exc:
            raise CorruptAudio(f"The audio cannot be decoded: {exc}") from None
        if decoded == 0:
            raise CorruptAudio("The audio cannot be decoded: no audio frames found.")
        codec = stream.codec_context.name
        duration = _duration(container, stream)
        rate = stream.codec_context.sample_rate
        if decoded < 0.9 * min(1.0, duration) * rate:
            raise CorruptAudio("The audio is truncated: it ends long before its announced end.")
        bitrate = stream.codec_context.bit_rate or container.bit_rate
        return SourceInfo(
            format=fmt,
            codec=codec,
            sample_rate=stream.codec_context.sample_rate,
            channels=stream.codec_context.channels,
            bitrate_kbps=round(bitrate / 1000) if bitrate else None,
            duration_seconds=duration,
            lossless=codec.startswith(_LOSSLESS),
        )


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / 1_000_000)
    return 0.0


def build_ladder(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    info: SourceInfo,
    cover: bytes | None = None,
    segment_seconds: int = 6,
) -> LadderResult:
    """MP3 128 (HLS + progressive), FLAC for lossless sources, master, waveform, artwork."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mono = array("h")
    samples = _encode(source, out / "mp3_128.mp3", info, mono)
    _segment(out / "mp3_128.mp3", out / "mp3_128", segment_seconds)
    renditions = [
        Rendition(
            "medium", "mp3", "mp3", 128, "mp3_128", "mp3_128.mp3",
            (out / "mp3_128.mp3").stat().st_size, 128_000 + 8_000, "mp4a.40.34",
        )
    ]  # fmt: skip
    if info.lossless:
        _transcode(source, out / "original.flac", "flac")
        size = (out / "original.flac").stat().st_size
        renditions.append(
            Rendition("lossless", "flac", "flac", None, None, "original.flac", size, 0, "fLaC")
        )
    master = "#EXTM3U\n#EXT-X-VERSION:3\n"
    master += '#EXT-X-STREAM-INF:BANDWIDTH=136000,CODECS="mp4a.40.34"\nmp3_128/index.m3u8\n'
    (out / "master.m3u8").write_text(master)
    if samples < 0.9 * info.duration_seconds * _RATE:
        raise CorruptAudio("The audio is truncated: it ends long before its announced end.")
    (out / "waveform.json").write_text(json.dumps(_waveform(mono)))
    artwork = None
    if cover is not None:
        try:
            (out / "artwork.jpg").write_bytes(make_artwork(cover))
            artwork = "artwork.jpg"
        except NotImage:
            artwork = None
    return LadderResult(
        renditions=renditions,
        artwork_name=artwork,
        duration_seconds=samples / _RATE,
        loudness_lufs=_loudness(mono),
    )


def _encode(
    source: str | os.PathLike[str], target: Path, info: SourceInfo, mono: array[int]
) -> int:
    """Decode `source` once into MP3 128 kbps at 44.1 kHz stereo; mono s16 into `mono`."""
    total = 0
    try:
        with av.open(str(source)) as inp, av.open(str(target), "w", format="mp3") as outp:
            stream = outp.add_stream("libmp3lame", rate=_RATE)
            stream.bit_rate = 128_000
            stream.layout = "stereo"
            to_enc = av.AudioResampler(format="s16p", layout="stereo", rate=_RATE)
            to_mono = av.AudioResampler(format="s16", layout="mono", rate=_RATE)
            for frame in inp.decode(audio=0):
                frame.pts = None
                for f in to_enc.resample(frame):
                    total += f.samples
                    outp.mux(stream.encode(f))
                for m in to_mono.resample(frame):
                    mono.frombytes(bytes(m.planes[0])[: m.samples * 2])
            for f in to_enc.resample(None):
                total += f.samples
                outp.mux(stream.encode(f))
            outp.mux(stream.encode(None))
    except av.error.FFmpegError as exc:
        raise CorruptAudio(f"The audio cannot be decoded: {exc}") from None
    return total


def _transcode(source: str | os.PathLike[str], target: Path, codec: str) -> None:
    with av.open(str(source)) as inp, av.open(str(target), "w", format=codec) as outp:
        src = inp.streams.audio[0]
        stream = outp.add_stream(codec, rate=src.codec_context.sample_rate)
        assert isinstance(stream, av.AudioStream)
        resampler = av.AudioResampler(format="s16", layout=src.codec_context.layout)
        for frame in inp.decode(src):
            frame.pts = None
            for f in resampler.resample(frame):
                outp.mux(stream.encode(f))
        outp.mux(stream.encode(None))


def _segment(progressive: Path, hls_dir: Path, seconds: int) -> None:
    """Stream-copy the MP3 into MPEG-TS segments with libavformat's HLS muxer."""
    hls_dir.mkdir(exist_ok=True)
    options = {
        "hls_time": str(seconds),
        "hls_playlist_type": "vod",
        "hls_segment_filename": str(hls_dir / "segment%03d.ts"),
    }
    with (
        av.open(str(progressive)) as inp,
        av.open(str(hls_dir / "index.m3u8"), "w", format="hls", options=options) as outp,
    ):
        src = inp.streams.audio[0]
        stream = outp.add_stream_from_template(src)
        for packet in inp.demux(src):
            if packet.dts is None:
                continue
            packet.stream = stream
            outp.mux(packet)
    text = (hls_dir / "index.m3u8").read_text()
    (hls_dir / "index.m3u8").write_text(text.replace(str(hls_dir) + "/", ""))


def _waveform(mono: array[int]) -> dict[str, Any]:
    per = max(1, math.ceil(len(mono) / _PEAKS))
    data: list[int] = []
    for start in range(0, len(mono), per):
        chunk = mono[start : start + per]
        data += [min(chunk) >> 8, max(chunk) >> 8]
    return {
        "version": 2,
        "channels": 1,
        "sample_rate": _RATE,
        "samples_per_pixel": per,
        "bits": 8,
        "length": len(data) // 2,
        "data": data,
    }


def _loudness(mono: array[int]) -> float | None:
    if not mono:
        return None
    step = max(1, len(mono) // 100_000)
    picked = mono[::step]
    mean = sum(s * s for s in picked) / len(picked) / (32768.0**2)
    return round(10 * math.log10(mean) - 0.691, 1) if mean > 0 else None


def make_artwork(image: bytes, size: int = 500) -> bytes:
    """`image` as a JPEG of at most `size`×`size` pixels; NotImage when it is not one."""
    try:
        with av.open(io.BytesIO(image), "r") as inp:
            frame = next(inp.decode(video=0))
    except (av.error.FFmpegError, StopIteration, IndexError, ValueError):
        raise NotImage("The artwork is not an image.") from None
    scale = min(1.0, size / max(frame.width, frame.height))
    width = max(2, int(frame.width * scale) // 2 * 2)
    height = max(2, int(frame.height * scale) // 2 * 2)
    frame = frame.reformat(width=width, height=height, format="yuvj420p")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mjpeg") as outp:
        stream = outp.add_stream("mjpeg")
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        for packet in stream.encode(frame):
            outp.mux(packet)
        for packet in stream.encode(None):
            outp.mux(packet)
    return buf.getvalue()
