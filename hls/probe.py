"""What an uploaded audio file is, found by parsing it with PyAV (never by its name).

`probe_audio` opens the file, checks that it holds exactly one decodable audio stream in a
container we accept (MP3, WAV, FLAC, Ogg Vorbis/Opus, M4A/AAC, raw ADTS AAC, AIFF), decodes
a few packets at the start and the last second at the end to prove both are there, and
returns a `SourceInfo`. Blocking: callers run it in a worker thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import av
from av.audio.stream import AudioStream
from av.container import InputContainer

ACCEPTED = "upload MP3, WAV, FLAC, OGG (Vorbis/Opus), M4A/AAC or AIFF"
#: Packets decoded at the start of the file to prove the audio decodes.
_HEAD_PACKETS = 8
# A file whose audio ends this much before the duration its header announces is cut off:
# max(1 s, 2 %) tolerates encoders whose headers are slightly off.
_TRUNCATION_SECONDS, _TRUNCATION_SHARE = 1.0, 0.02
_TAIL_SECONDS = 2.0  # how far before the announced end `_check_tail` seeks
_SNIFF = 64
_XING_WINDOW = 4096  # an MP3's Xing/Info/VBRI frame is its first frame (junk allowed)

# libavformat demuxer → our format name, with the codecs it may carry.
_CONTAINERS: dict[str, tuple[str, frozenset[str]]] = {
    "mp3": ("mp3", frozenset({"mp3"})),
    "wav": ("wav", frozenset()),  # any pcm_* codec
    "w64": ("wav", frozenset()),
    "flac": ("flac", frozenset({"flac"})),
    "ogg": ("ogg", frozenset({"vorbis", "opus", "flac"})),
    "aac": ("aac", frozenset({"aac"})),
    "aiff": ("aiff", frozenset()),  # any pcm_* codec
}
_MP4 = ("m4a", frozenset({"aac", "alac", "mp3"}))
_LOSSLESS_CODECS = frozenset({"flac", "alac"})

# Leading bytes of files DJs upload by mistake, named in the NotAudio message.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"MThd", "a MIDI file"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a program"),
    (b"\x1a\x45\xdf\xa3", "a Matroska/WebM file"),
)


class NotAudio(ValueError):
    """Not a supported audio file; `message` (for the user) names what was found."""

    def __init__(self, detected: str | None) -> None:
        found = f"found {detected}" if detected else "no audio found"
        self.message = f"Unsupported file type: {found}; {ACCEPTED}"
        self.detected = detected
        super().__init__(self.message)


class CorruptAudio(ValueError):
    """A recognised audio file that is truncated or does not decode; `message` for the user."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class SourceInfo:
    """An accepted upload: container format and codec as PyAV found them."""

    format: str  # mp3, wav, flac, ogg, m4a, aac, aiff
    codec: str  # mp3, pcm_s16le, pcm_s24le, flac, vorbis, opus, aac, alac, …
    sample_rate: int
    channels: int
    bitrate_kbps: int | None
    duration_seconds: float
    lossless: bool


def probe_audio(path: str | os.PathLike[str]) -> SourceInfo:
    """Open and check `path`; NotAudio / CorruptAudio when it cannot be published."""
    _sniff(path)
    try:
        container = av.open(os.fspath(path), "r")
    except av.error.FFmpegError as exc:
        raise NotAudio(None) from exc
    with container:
        fmt, stream = _audio_stream(container)
        codec = stream.codec_context.codec.canonical_name
        duration = _duration(container, stream)
        decoded = _check_head(container, stream)
        if duration is None or duration <= 0:
            raise CorruptAudio("The audio file's duration cannot be read.")
        if _declares_length(path, fmt):
            _check_tail(container, stream, duration, decoded)
        if fmt in ("wav", "aiff"):
            _check_pcm_size(path)
        rate = stream.codec_context.sample_rate
        channels = stream.codec_context.channels
        bit_rate = stream.codec_context.bit_rate or container.bit_rate
    lossless = codec.startswith("pcm_") or codec in _LOSSLESS_CODECS
    if not lossless and not bit_rate:
        bit_rate = round(os.path.getsize(path) * 8 / duration)
    return SourceInfo(
        format=fmt,
        codec=codec,
        sample_rate=rate,
        channels=channels,
        bitrate_kbps=round(bit_rate / 1000) if bit_rate else None,
        duration_seconds=duration,
        lossless=lossless,
    )


def _sniff(path: str | os.PathLike[str]) -> None:
    with open(path, "rb") as file:
        head = file.read(_SNIFF)
    if not head:
        raise NotAudio("an empty file")
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise NotAudio(kind)
    if head[4:8] == b"ftyp" and head[8:12] in (b"isom", b"mp41", b"mp42", b"avc1", b"qt  "):
        return  # could be an M4A written with a video brand: the streams decide
    if _is_text(head):
        raise NotAudio("a text file")


def _declares_length(path: str | os.PathLike[str], fmt: str) -> bool:
    """Whether the duration libavformat found was written in the file by its encoder (FLAC
    STREAMINFO, MP4 moov, WAV/AIFF sizes, an MP3's Xing/Info/VBRI frame, Ogg's last page),
    not estimated from the bit rate: only such a duration shows a file was cut off. ADTS
    AAC and MP3 without such a frame are estimated (wrongly for VBR), so not checked."""
    if fmt == "aac":
        return False
    if fmt != "mp3":
        return True
    with open(path, "rb") as file:
        head = file.read(10)
        skip = 0
        if head.startswith(b"ID3") and len(head) == 10:
            # id3.org ID3v2.4 §3.1: a synchsafe size, plus a footer when flag bit 4 is set.
            skip = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
            skip += 10 if head[5] & 0x10 else 0
        file.seek(skip)
        first = file.read(_XING_WINDOW)
    return any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))


def _check_pcm_size(path: str | os.PathLike[str]) -> None:
    """WAV and AIFF declare their sample data's size; libavformat trusts the file's size
    instead, so a cut-off file would play as a shorter track."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        head = file.read(12)
        riff = head.startswith((b"RIFF", b"RF64")) and head[8:12] == b"WAVE"
        wanted = b"data" if riff else b"SSND"
        order: Literal["little", "big"] = "little" if riff else "big"
        offset = 12
        while offset + 8 <= size:
            file.seek(offset)
            chunk = file.read(8)
            length = int.from_bytes(chunk[4:8], order)
            if chunk[:4] == wanted:
                declared = offset + 8 + length
                if length != 0xFFFFFFFF and declared > size + 1:  # RF64 puts -1 here
                    raise CorruptAudio(
                        f"The audio file is truncated: it holds {size} of the {declared} "
                        "bytes its header announces."
                    )
                return
            offset += 8 + length + (length & 1)  # chunks are padded to even sizes


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def _audio_stream(container: InputContainer) -> tuple[str, AudioStream]:
    name = container.format.name
    audio = [s for s in container.streams.audio]
    video = [s for s in container.streams.video if not _attached_picture(s)]
    if video:
        kind = "an image" if name.endswith("_pipe") or name == "image2" else "a video"
        raise NotAudio(f"{kind} ({video[0].codec_context.name})")
    if not audio:
        raise NotAudio(f"a {name} file with no audio")
    if len(audio) > 1:
        raise NotAudio(f"a {name} file with {len(audio)} audio streams")
    stream = audio[0]
    fmt, codecs = _MP4 if name.startswith("mov,") else _CONTAINERS.get(name, (name, None))
    codec = stream.codec_context.codec.canonical_name
    if codecs is None or (codecs and codec not in codecs):
        raise NotAudio(f"{codec} audio in a {fmt} container")
    if not codecs and not codec.startswith("pcm_"):
        raise NotAudio(f"{codec} audio in a {fmt} container")
    return fmt, stream


def _attached_picture(stream: Any) -> bool:
    # Cover art in MP3 (APIC) and M4A (covr) shows up as a one-picture video stream.
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _duration(container: InputContainer, stream: AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _check_head(container: InputContainer, stream: AudioStream) -> int:
    """Decode the first packets; the number of samples they held."""
    samples = 0
    try:
        for count, packet in enumerate(container.demux(stream)):
            samples += sum(frame.samples for frame in packet.decode())
            if count >= _HEAD_PACKETS and samples:
                break
    except av.error.FFmpegError as exc:
        raise CorruptAudio(f"The audio does not decode: {exc}") from exc
    if not samples:
        raise CorruptAudio("The file contains no decodable audio.")
    return samples


def _check_tail(
    container: InputContainer, stream: AudioStream, duration: float, head_samples: int
) -> None:
    """Seek to the last seconds the header announces and decode to the end: a cut-off file
    ends well before its announced duration."""
    tb = stream.time_base or Fraction(1, stream.codec_context.sample_rate)
    start = stream.start_time or 0
    target = max(0.0, duration - _TAIL_SECONDS)
    end = head_samples / stream.codec_context.sample_rate
    try:
        container.seek(start + int(target / tb), stream=stream, backward=True)
        for packet in container.demux(stream):
            for frame in packet.decode():
                if frame.pts is not None:
                    end = max(end, float((frame.pts - start) * tb) + frame.samples / frame.rate)
    except av.error.FFmpegError as exc:
        if end < target:
            raise CorruptAudio(
                f"The audio file is truncated or damaged near its end: {exc}"
            ) from exc
    missing = duration - end
    if missing > max(_TRUNCATION_SECONDS, _TRUNCATION_SHARE * duration):
        raise CorruptAudio(
            f"The audio file is truncated: it holds {end:.1f} s of the {duration:.1f} s "
            "its header announces."
        )
