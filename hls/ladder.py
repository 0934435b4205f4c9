"""The track quality ladder, from one decode of the uploaded audio.

`build_ladder` decodes the source once, resamples it once (to 44.1 or 48 kHz, float planar,
mono or stereo) and hands every frame to each encode (AAC-LC 64 and 128 kbit/s, MP3 128 and,
for sources good enough, 320 kbit/s), to the waveform and to the loudness meter. Each
encode's packets go both to a progressive file and to HLS segments (`hls/rendition.py`),
then a master playlist lists the HLS renditions by bandwidth. A lossless source is also
kept as it is. Blocking: the caller runs it in a worker thread.

The public names (`probe_audio`, `NotAudio`, `CorruptAudio`, `SourceInfo`, `make_artwork`,
`NotImage`) are re-exported here: this module is the processing core's interface.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.audio.resampler import AudioResampler

from hls.artwork import NotImage, make_artwork
from hls.lame import Lame, load_lame
from hls.loudness import LoudnessMeter
from hls.master import Variant, render_master_playlist
from hls.probe import CorruptAudio, NotAudio, SourceInfo, probe_audio
from hls.rendition import (
    INDEX_NAME,
    AvEncode,
    Encode,
    EncodeResult,
    EncodeSpec,
    LameEncode,
    SegmentList,
)
from hls.waveform import Waveform

__all__ = [
    "ARTWORK_NAME",
    "INDEX_NAME",
    "MASTER_NAME",
    "WAVEFORM_NAME",
    "CorruptAudio",
    "LadderResult",
    "NotAudio",
    "NotImage",
    "Rendition",
    "SourceInfo",
    "build_ladder",
    "make_artwork",
    "probe_audio",
]

MASTER_NAME = "master.m3u8"
WAVEFORM_NAME = "waveform.json"
ARTWORK_NAME = "artwork.jpg"
#: A lossy source needs at least this bit rate for the 320 kbit/s MP3 to be worth it.
HIGH_SOURCE_KBPS = 256

LOW_AAC = EncodeSpec("low", "aac_64", "aac", "aac", 64, "m4a", "mp4", "mp4a.40.2")
MEDIUM_MP3 = EncodeSpec("medium", "mp3_128", "libmp3lame", "mp3", 128, "mp3", "mp3", "mp4a.40.34")
MEDIUM_AAC = EncodeSpec("medium", "aac_128", "aac", "aac", 128, "m4a", "mp4", "mp4a.40.2")
HIGH_MP3 = EncodeSpec("high", "mp3_320", "libmp3lame", "mp3", 320, "mp3", "mp3", "mp4a.40.34")

# Containers kept as the lossless rendition, by SourceInfo.format.
_LOSSLESS_FORMATS = {"flac": "flac", "wav": "wav", "aiff": "aiff", "m4a": "m4a", "ogg": "ogg"}


@dataclass(frozen=True)
class Rendition:
    """One file (and, for lossy ones, one HLS media playlist) of the ladder."""

    quality: str  # low | medium | high | lossless
    format: str  # mp3 | m4a | flac | wav | aiff (| ogg for a lossless Ogg FLAC)
    codec: str  # mp3 | aac | flac | pcm_s16le | …
    bitrate_kbps: int | None
    hls_dir: str | None  # sub-directory of out_dir with index.m3u8 + segments; None: lossless
    file_name: str  # the progressive file in out_dir
    size_bytes: int
    bandwidth: int  # bits/s for EXT-X-STREAM-INF BANDWIDTH (peak, container included)
    codecs: str | None  # RFC 6381
    average_bandwidth: int = 0  # bits/s, EXT-X-STREAM-INF AVERAGE-BANDWIDTH


@dataclass(frozen=True)
class LadderResult:
    """Everything `build_ladder` wrote into out_dir."""

    renditions: list[Rendition]
    master_name: str
    waveform_name: str
    artwork_name: str | None
    duration_seconds: float
    loudness_lufs: float | None
    sample_rate: int = 0  # of the lossy renditions


def ladder_specs(info: SourceInfo) -> list[EncodeSpec]:
    """The lossy renditions for a source: 320 kbit/s only when the source has it."""
    specs = [LOW_AAC, MEDIUM_MP3, MEDIUM_AAC]
    if info.lossless or (info.bitrate_kbps or 0) >= HIGH_SOURCE_KBPS:
        specs.append(HIGH_MP3)
    return specs


def target_rate(sample_rate: int) -> int:
    """44.1 and 48 kHz stay; other rates go to the one of the same family."""
    if sample_rate in (44_100, 48_000):
        return sample_rate
    return 44_100 if sample_rate % 11_025 == 0 else 48_000


def build_ladder(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    info: SourceInfo,
    cover: bytes | None = None,
    segment_seconds: int = 6,
) -> LadderResult:
    """Write every rendition, the master playlist, the waveform and the artwork into
    `out_dir`; CorruptAudio when the audio stops decoding, NotImage for a bad cover."""
    if segment_seconds < 1:
        raise ValueError("segment_seconds must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    artwork_name = None
    if cover is not None:
        (out / ARTWORK_NAME).write_bytes(make_artwork(cover))
        artwork_name = ARTWORK_NAME
    rate = target_rate(info.sample_rate)
    layout = "mono" if info.channels == 1 else "stereo"
    encodes: list[Encode] = []
    try:
        for spec in ladder_specs(info):
            encodes.append(_encode(spec, out, rate, info, segment_seconds))
        waveform, lufs, seconds = _transcode(source, encodes, rate, layout, info)
        results = [encode.finish() for encode in encodes]
    finally:
        for encode in encodes:
            encode.close()
    (out / WAVEFORM_NAME).write_text(json.dumps(waveform, separators=(",", ":")))
    renditions = [_lossy(result) for result in results]
    (out / MASTER_NAME).write_text(
        render_master_playlist(
            [
                Variant(f"{r.hls_dir}/{INDEX_NAME}", r.bandwidth, r.average_bandwidth, r.codecs)
                for r in renditions
            ]
        )
    )
    if info.lossless:
        renditions.append(_keep_original(source, out, info, seconds))
    return LadderResult(
        renditions=renditions,
        master_name=MASTER_NAME,
        waveform_name=WAVEFORM_NAME,
        artwork_name=artwork_name,
        duration_seconds=seconds,
        loudness_lufs=lufs,
        sample_rate=rate,
    )


def _encode(
    spec: EncodeSpec, out: Path, rate: int, info: SourceInfo, segment_seconds: int
) -> Encode:
    """LAME for MP3 when the system has it (see hls/lame.py), PyAV for the rest."""
    segments = SegmentList(out / spec.name, segment_seconds, info.duration_seconds)
    channels = 1 if info.channels == 1 else 2
    lib = load_lame() if spec.codec == "mp3" else None
    if lib is not None:
        lame = Lame(lib, rate=rate, channels=channels, bitrate_kbps=spec.bitrate_kbps)
        return LameEncode(spec, out, lame, rate=rate, segments=segments)
    layout = "mono" if channels == 1 else "stereo"
    return AvEncode(spec, out, rate=rate, layout=layout, segments=segments)


def _transcode(
    source: str | os.PathLike[str], encodes: list[Encode], rate: int, layout: str, info: SourceInfo
) -> tuple[dict[str, object], float | None, float]:
    """The one decode: every frame to every consumer. Returns (waveform, LUFS, seconds)."""
    resampler = AudioResampler(format="fltp", layout=layout, rate=rate)
    waveform = Waveform(rate, round(info.duration_seconds * rate))
    meter = LoudnessMeter(rate, layout)
    try:
        with av.open(os.fspath(source), "r") as container:
            stream = container.streams.audio[0]
            for packet in container.demux(stream):
                for decoded in packet.decode():
                    for frame in resampler.resample(decoded):
                        _consume(frame, encodes, waveform, meter)
            for frame in resampler.resample(None):
                _consume(frame, encodes, waveform, meter)
    except av.error.FFmpegError as exc:
        raise CorruptAudio(f"The audio stops decoding: {exc}") from exc
    if not waveform.samples:
        raise CorruptAudio("The file contains no decodable audio.")
    return waveform.result(), meter.finish(), waveform.samples / rate


def _consume(
    frame: av.AudioFrame, encodes: list[Encode], waveform: Waveform, meter: LoudnessMeter
) -> None:
    planes = frame.to_ndarray().astype(np.float32, copy=False)  # fltp: already float32
    waveform.feed(planes)
    meter.feed(frame)
    for encode in encodes:
        encode.feed(frame, planes)


def _lossy(result: EncodeResult) -> Rendition:
    spec = result.spec
    return Rendition(
        quality=spec.quality,
        format=spec.format,
        codec=spec.codec,
        bitrate_kbps=spec.bitrate_kbps,
        hls_dir=spec.name,
        file_name=spec.file_name,
        size_bytes=result.size_bytes,
        bandwidth=result.bandwidth,
        codecs=spec.codecs,
        average_bandwidth=result.average_bandwidth,
    )


def _keep_original(
    source: str | os.PathLike[str], out: Path, info: SourceInfo, seconds: float
) -> Rendition:
    extension = _LOSSLESS_FORMATS.get(info.format, info.format)
    name = f"original.{extension}"
    shutil.copyfile(source, out / name)
    size = (out / name).stat().st_size
    bits = round(size * 8 / seconds) if seconds > 0 else 0
    return Rendition(
        quality="lossless",
        format=info.format,
        codec=info.codec,
        bitrate_kbps=info.bitrate_kbps or round(bits / 1000),
        hls_dir=None,
        file_name=name,
        size_bytes=size,
        bandwidth=bits,
        codecs=None,
        average_bandwidth=bits,
    )
