"""The live feed a fake source plays: real MP3 (or ADTS AAC) frames looped at real time, with
ICY metadata.

Deliberately independent of `relay/` (the code under test): a tiny frame splitter for
the CBR files `tests.audio.make_mp3` writes, and an ICY metadata interleaver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Layer III bit rates (kbit/s) by header bits 15-12; MPEG-1 and MPEG-2/2.5 (LSF) tables.
_KBPS_MPEG1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)
_KBPS_LSF = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0)
# Sample rates by header bits 20-19 (version id: 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5).
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
CHUNK_SECONDS = 0.1  # how much audio a fake sends at a time


@dataclass(frozen=True, slots=True)
class FrameClip:
    """Audio frames of one duration each, looped as a live stream in chunks."""

    frames: Sequence[bytes]
    frame_duration: float  # seconds; every frame of a CBR file at one rate has the same

    @property
    def frames_per_chunk(self) -> int:
        return max(1, round(CHUNK_SECONDS / self.frame_duration))

    def chunk(self, index: int) -> bytes:
        """`frames_per_chunk` frames from frame `index` on, wrapping around the clip."""
        count = len(self.frames)
        return b"".join(self.frames[(index + k) % count] for k in range(self.frames_per_chunk))


@dataclass(frozen=True, slots=True)
class Mp3Clip(FrameClip):
    """The audio frames of an MP3 file, ready to be looped as a live stream."""

    @classmethod
    def parse(cls, mp3: bytes) -> Mp3Clip:
        """Split `mp3` into frames, dropping the ID3v2 tag and LAME's "Info"/"Xing" frame
        (a live stream carries neither). Only Layer III, as encoders for streams write."""
        pos = _id3v2_size(mp3)
        frames: list[bytes] = []
        duration = 0.0
        while pos + 4 <= len(mp3):
            header = int.from_bytes(mp3[pos : pos + 4], "big")
            version = (header >> 19) & 3
            # ISO/IEC 11172-3 §2.4.1.3: 11-bit sync, version id (1 is reserved), layer '01' = III.
            if header >> 21 != 0x7FF or version == 1 or (header >> 17) & 3 != 1:
                raise ValueError(f"no MPEG audio Layer III frame at byte {pos}")
            mpeg1 = version == 3
            kbps = (_KBPS_MPEG1 if mpeg1 else _KBPS_LSF)[(header >> 12) & 15]
            rate = _RATES[version][(header >> 10) & 3]
            padding = (header >> 9) & 1
            length = (144 if mpeg1 else 72) * kbps * 1000 // rate + padding
            frame = mp3[pos : pos + length]
            if len(frame) < length:
                break
            is_info_tag = not frames and (b"Info" in frame[:64] or b"Xing" in frame[:64])
            if not is_info_tag:
                frames.append(frame)
            duration = (1152 if mpeg1 else 576) / rate
            pos += length
        if not frames:
            raise ValueError("no MP3 frames")
        return cls(tuple(frames), duration)


@dataclass(frozen=True, slots=True)
class AdtsClip(FrameClip):
    """The frames of an ADTS AAC stream (as `tests.audio.make_aac` writes it), looped like
    `Mp3Clip`. ISO/IEC 13818-7 §6.2: 12-bit sync, the frame length in header bits 30-42."""

    @classmethod
    def parse(cls, adts: bytes, sample_rate: int) -> AdtsClip:
        frames: list[bytes] = []
        pos = 0
        while pos + 7 <= len(adts):
            if adts[pos] != 0xFF or adts[pos + 1] & 0xF6 != 0xF0:
                raise ValueError(f"no ADTS frame at byte {pos}")
            length = (adts[pos + 3] & 3) << 11 | adts[pos + 4] << 3 | adts[pos + 5] >> 5
            frames.append(adts[pos : pos + length])
            pos += length
        return cls(tuple(frames), 1024 / sample_rate)


@dataclass(frozen=True, slots=True)
class BytesClip:
    """Any other stream (Ogg, FLAC) cut in equal pieces, looped at `bitrate`: enough for a
    source whose type the node must refuse."""

    frames: Sequence[bytes]
    frame_duration: float

    @classmethod
    def cut(cls, data: bytes, bitrate: int, piece: int = 4096) -> BytesClip:
        pieces = tuple(data[i : i + piece] for i in range(0, len(data), piece))
        return cls(pieces, piece * 8 / bitrate)

    @property
    def frames_per_chunk(self) -> int:
        return 1

    def chunk(self, index: int) -> bytes:
        return self.frames[index % len(self.frames)]


def _id3v2_size(data: bytes) -> int:
    """Bytes taken by a leading ID3v2 tag (id3.org ID3v2.4 §3.1: syncsafe size, footer flag)."""
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def icy_metadata_block(title: str) -> bytes:
    """One ICY metadata block carrying `title`: a length byte L, then L × 16 bytes of
    `StreamTitle='…';` padded with NULs (SHOUTcast: length byte × 16, at most 255 × 16)."""
    text = f"StreamTitle='{title}';".encode()[: 255 * 16]
    blocks = -(-len(text) // 16)
    return bytes([blocks]) + text.ljust(blocks * 16, b"\0")


class IcyInterleaver:
    """Inserts a metadata block after every `metaint` audio bytes, as SHOUTcast and Icecast
    do for clients that sent `Icy-MetaData: 1`. The title goes in the first block and in the
    first block after each change; every other block is the empty one (a single 0 byte)."""

    def __init__(self, metaint: int) -> None:
        if metaint <= 0:
            raise ValueError("metaint must be positive")
        self.metaint = metaint
        self._until_block = metaint
        self._sent_title: str | None = None

    def wrap(self, audio: bytes, title: str) -> bytes:
        out = bytearray()
        pos = 0
        while len(audio) - pos >= self._until_block:
            out += audio[pos : pos + self._until_block]
            pos += self._until_block
            out += self._block(title)
            self._until_block = self.metaint
        out += audio[pos:]
        self._until_block -= len(audio) - pos
        return bytes(out)

    def _block(self, title: str) -> bytes:
        if title == self._sent_title:
            return b"\0"
        self._sent_title = title
        return icy_metadata_block(title)
