"""MPEG audio (Layer III) frame reader: a sans-IO push parser that resyncs after garbage.

References: ISO/IEC 11172-3 §2.4.1.3 (MPEG-1 header), ISO/IEC 13818-3 (MPEG-2 LSF), the
unofficial MPEG-2.5 extension, id3.org "ID3 tag version 2.4.0 - Main Structure" §3.1 and the
LAME/Xing "Info" tag specification.

A codec core shared by `relay/` (source, hub) and `hls/` (live packager, VOD segmenter, MP3
joiner), which imports it by design: it imports nothing from either package, nor asyncio,
aiohttp or av, and never reads the clock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

# Header bits 20-19: MPEG version id (0b01 is reserved).
_VERSIONS: tuple[float | None, ...] = (2.5, None, 2, 1)
# Layer III bitrates in kbit/s by bitrate index; index 0 (free format) and 15 are rejected.
_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)
_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0)
_SAMPLE_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 2.5: (11025, 12000, 8000)}
# Layer III side information size in bytes, by (MPEG-1?, mono?); the Xing/Info tag follows it.
_SIDE_INFO = {(True, False): 32, (True, True): 17, (False, False): 17, (False, True): 9}
_VBRI_OFFSET = 4 + 32  # Fraunhofer VBRI tag: always 32 bytes after the header
_ID3V2_HEADER = 10
_ID3V1_SIZE = 128


class ChannelMode(enum.IntEnum):
    """Header bits 7-6."""

    STEREO = 0
    JOINT_STEREO = 1
    DUAL_CHANNEL = 2
    MONO = 3


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """A decoded 4-byte MPEG audio Layer III frame header."""

    version: float  # 1, 2 or 2.5
    layer: int  # always 3
    bitrate_kbps: int
    sample_rate: int
    channel_mode: ChannelMode
    channels: int
    padding: bool
    protected: bool  # a 16-bit CRC follows the header
    samples_per_frame: int
    frame_length: int  # bytes, header and padding included

    @property
    def duration(self) -> float:
        """Seconds of audio in one frame."""
        return self.samples_per_frame / self.sample_rate

    @staticmethod
    def parse(data: bytes) -> FrameHeader | None:
        """Decode the first 4 bytes of `data`; None if they are not a valid Layer III header."""
        if len(data) < 4:
            return None
        return _parse_header(bytes(data[:4]))

    def same_stream(self, other: FrameHeader) -> bool:
        """True if `other` may follow this header in one stream (version, layer, sample rate)."""
        return (
            self.version == other.version
            and self.layer == other.layer
            and self.sample_rate == other.sample_rate
        )


@lru_cache(maxsize=4096)
def _parse_header(raw: bytes) -> FrameHeader | None:
    # Cached: a stream repeats a handful of distinct headers, and FrameHeader is immutable.
    b0, b1, b2, b3 = raw
    if b0 != 0xFF or b1 & 0xE0 != 0xE0:  # 11-bit frame sync
        return None
    version = _VERSIONS[(b1 >> 3) & 3]
    if version is None or (b1 >> 1) & 3 != 0b01:  # reserved version, or not Layer III
        return None
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
    if bitrate_index in (0, 15) or rate_index == 3 or b3 & 3 == 2:  # free, bad, reserved
        return None
    mpeg1 = version == 1
    bitrate = (_BITRATES_V1 if mpeg1 else _BITRATES_V2)[bitrate_index]
    sample_rate = _SAMPLE_RATES[version][rate_index]
    padding = bool(b2 & 2)
    mode = ChannelMode(b3 >> 6)
    samples = 1152 if mpeg1 else 576
    return FrameHeader(
        version=version,
        layer=3,
        bitrate_kbps=bitrate,
        sample_rate=sample_rate,
        channel_mode=mode,
        channels=1 if mode is ChannelMode.MONO else 2,
        padding=padding,
        protected=not b1 & 1,
        samples_per_frame=samples,
        # Layer III: samples/8 bytes per (bit/s ÷ sample rate), plus one padding byte.
        frame_length=samples // 8 * bitrate * 1000 // sample_rate + padding,
    )


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete MPEG audio frame: `data` starts with the 4 header bytes."""

    header: FrameHeader
    data: bytes

    @property
    def duration(self) -> float:
        """Nominal duration of the frame (also for an info frame)."""
        return self.header.duration

    @property
    def is_info_frame(self) -> bool:
        """True for a Xing/Info (LAME) or VBRI header frame: it carries no audio, so drop it
        when concatenating files."""
        h = self.header
        offset = 4 + _SIDE_INFO[(h.version == 1, h.channels == 1)]
        offsets = (offset, offset + 2) if h.protected else (offset,)
        if any(self.data[o : o + 4] in (b"Xing", b"Info") for o in offsets):
            return True
        return self.data[_VBRI_OFFSET : _VBRI_OFFSET + 4] == b"VBRI"

    @property
    def announced_frames(self) -> int | None:
        """For a Xing/Info (LAME) or VBRI header frame, the number of frames it says the
        file holds; None for other frames, or when the header leaves the count out.

        Xing/Info: "Xing"/"Info", 32-bit flags, then (flag 0x1) a 32-bit frame count; VBRI:
        "VBRI", version, delay, quality (16 bits each), byte count, then the frame count."""
        h, data = self.header, self.data
        offset = 4 + _SIDE_INFO[(h.version == 1, h.channels == 1)]
        for o in (offset, offset + 2) if h.protected else (offset,):
            if data[o : o + 4] in (b"Xing", b"Info"):
                if len(data) >= o + 12 and data[o + 7] & 1:
                    return int.from_bytes(data[o + 8 : o + 12], "big")
                return None
        count = _VBRI_OFFSET + 14
        if data[_VBRI_OFFSET : _VBRI_OFFSET + 4] == b"VBRI" and len(data) >= count + 4:
            return int.from_bytes(data[count : count + 4], "big")
        return None


# `Mp3FrameReader._scan` builds a Frame per MP3 frame (~40 per second of audio, on every
# relay and upload): through the slot descriptors, at half the cost of the frozen
# dataclass's `__init__`. Headers seen are looked up by their 4 bytes in `_HEADERS` (a
# plain dict: cheaper than a call through `lru_cache`), which is emptied when it grows
# past `_HEADERS_MAX` (garbage can hold any bytes).
_new_frame = object.__new__
_set_header: Callable[[Frame, FrameHeader], None] = vars(Frame)["header"].__set__
_set_data: Callable[[Frame, bytes], None] = vars(Frame)["data"].__set__
_HEADERS: dict[bytes, FrameHeader | None] = {}
_HEADERS_MAX = 4096


def _cache_header(raw: bytes) -> FrameHeader | None:
    if len(_HEADERS) >= _HEADERS_MAX:
        _HEADERS.clear()
    header = _HEADERS[raw] = _parse_header(raw)
    return header


def frames_duration(frames: Iterable[Frame]) -> float:
    """Playable duration in seconds; info frames carry no audio and are not counted."""
    return sum(f.header.duration for f in frames if not f.is_info_frame)


def _id3v2_size(head: bytes) -> int | None:
    """Total size of the ID3v2 tag whose 10-byte header is `head`, or None if it is not one."""
    # id3.org ID3v2.4 §3.1: "ID3", major (2-4), revision (not 0xFF), flags, syncsafe size.
    if head[:3] != b"ID3" or head[3] not in (2, 3, 4) or head[4] == 0xFF:
        return None
    size_bytes = head[6:10]
    if any(b & 0x80 for b in size_bytes):
        return None
    size = 0
    for b in size_bytes:
        size = size << 7 | b
    footer = _ID3V2_HEADER if head[5] & 0x10 else 0  # §3.1 flag d: footer present
    return _ID3V2_HEADER + size + footer


class Mp3FrameReader:
    """Push parser: `feed()` bytes in any chunking, get back the complete frames.

    Sync rule: outside sync, a header is only accepted when the bytes right after its frame
    are another valid header of the same version, layer and sample rate. Right after a clean
    frame (in sync) one matching header is enough. ID3v2 tags are skipped wherever they
    appear (by counting, not buffering) and do not break sync; 128-byte ID3v1 "TAG" blocks
    are dropped when they directly follow a frame. Anything else is garbage: it is dropped,
    counted in `skipped_bytes`, and sync is lost. At most about two frames plus an ID3v2
    header stay buffered between calls.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._tag_left = 0  # bytes of an ID3v2 tag still to skip
        self._last: FrameHeader | None = None  # header of the previous clean frame (in sync)
        self.skipped_bytes = 0
        self.tag_bytes = 0  # ID3v2/ID3v1 bytes dropped
        self.frames = 0

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for more input."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Consume `data`; return the frames completed by it, in stream order."""
        if self._tag_left:
            n = min(self._tag_left, len(data))
            self._tag_left -= n
            self.tag_bytes += n
            data = data[n:]
        buf = self._buf + data if self._buf else bytes(data)
        out: list[Frame] = []
        pos = self._scan(buf, out)
        self._buf = buf[pos:]
        return out

    def flush(self) -> list[Frame]:
        """End of stream: return the last frame if the buffer holds exactly one valid frame
        (optionally followed by an ID3v1 tag); anything else left over counts as skipped."""
        buf, self._buf, self._last = self._buf, b"", None
        header = FrameHeader.parse(buf)
        out: list[Frame] = []
        if header is not None and len(buf) >= header.frame_length:
            rest = buf[header.frame_length :]
            if not rest or (len(rest) == _ID3V1_SIZE and rest[:3] == b"TAG"):
                out.append(Frame(header, buf[: header.frame_length]))
                self.frames += 1
                self.tag_bytes += len(rest)
                return out
        self.skipped_bytes += len(buf)
        return out

    def _scan(self, buf: bytes, out: list[Frame]) -> int:
        """Emit the frames of `buf` into `out`; return how many bytes were consumed.

        Every decision only looks at bytes that are present, and waits (returns) when it
        needs more, so the result does not depend on how the input was chunked.

        The hot loop of every relay and upload (one pass per frame): state lives in locals
        until the end, headers come from a dict keyed by their 4 bytes, and frames are built
        without the dataclass `__init__`."""
        pos, end = 0, len(buf)
        stop = end - 4
        last = self._last
        before = len(out)
        headers = _HEADERS
        append = out.append
        while pos <= stop:
            b0 = buf[pos]
            if b0 == 0xFF:
                raw = buf[pos : pos + 4]
                try:
                    header = headers[raw]
                except KeyError:
                    header = _cache_header(raw)
                if header is not None:
                    nxt = pos + header.frame_length
                    if last is not None and (
                        last is header
                        or (
                            last.sample_rate == header.sample_rate
                            and last.version == header.version
                        )
                    ):
                        if nxt > end:
                            break
                    else:
                        if nxt + 4 > end:
                            break
                        raw = buf[nxt : nxt + 4]
                        try:
                            follower = headers[raw]
                        except KeyError:
                            follower = _cache_header(raw)
                        if follower is None or not follower.same_stream(header):
                            header = None
                    if header is not None:
                        frame = _new_frame(Frame)
                        _set_header(frame, header)
                        _set_data(frame, buf[pos:nxt])
                        append(frame)
                        last = header
                        pos = nxt
                        continue
            elif b0 == 0x49 and buf[pos : pos + 3] == b"ID3":  # "I"
                if end - pos < _ID3V2_HEADER:
                    break
                size = _id3v2_size(buf[pos : pos + _ID3V2_HEADER])
                if size is not None:
                    n = min(size, end - pos)
                    self._tag_left = size - n
                    self.tag_bytes += n
                    pos += n
                    if self._tag_left:
                        break
                    continue
            elif b0 == 0x54 and last is not None and buf[pos : pos + 3] == b"TAG":  # "T"
                if end - pos < _ID3V1_SIZE:
                    break
                self.tag_bytes += _ID3V1_SIZE
                pos += _ID3V1_SIZE
                continue
            last = None
            pos = self._skip_garbage(buf, pos)
        self._last = last
        self.frames += len(out) - before
        return pos

    def _skip_garbage(self, buf: bytes, pos: int) -> int:
        """Drop bytes from `pos` up to the next possible frame sync or ID3v2 tag."""
        self._last = None
        candidates = [i for i in (buf.find(0xFF, pos + 1), buf.find(b"ID3", pos + 1)) if i >= 0]
        # Without a candidate, keep the last two bytes: they may begin "ID3".
        nxt = min(candidates) if candidates else max(pos + 1, len(buf) - 2)
        self.skipped_bytes += nxt - pos
        return nxt
