"""AAC in ADTS (Audio Data Transport Stream) frame reader: a sans-IO push parser that resyncs
after garbage, the AAC counterpart of `relay.mp3`.

Reference: ISO/IEC 13818-7 §6.2 (adts_fixed_header, adts_variable_header) and ISO/IEC
14496-3 §1.6.5 / Table 1.A.11 (ADTS in MPEG-4 Audio; sampling frequency index, object
types). Layout of the 7-byte header (9 bytes with the CRC):

    syncword 12 (0xFFF) | ID 1 | layer 2 (00) | protection_absent 1 | profile 2 |
    sampling_frequency_index 4 | private 1 | channel_configuration 3 | original 1 | home 1 |
    copyright_id 2 | aac_frame_length 13 (header included) | buffer_fullness 11 |
    number_of_raw_data_blocks_in_frame 2 (blocks - 1) | [crc 16, when protection_absent=0]

Each raw data block decodes to 1024 samples (AAC-LC; HE-AAC's SBR doubles the output rate
but the ADTS header keeps the core rate, so durations computed here stay right).

A codec core shared by `relay/` and `hls/`, like `relay.mp3`: it imports nothing from
either package, nor asyncio, aiohttp or av, and never reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

HEADER_SIZE = 7
CRC_SIZE = 2
SAMPLES_PER_BLOCK = 1024
# ISO/IEC 14496-3 Table 1.18: sampling_frequency_index 0-12; 13 and 14 reserved, 15 escape
# (not allowed in ADTS).
_SAMPLE_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)
# channel_configuration 1-6 are that many channels, 7 is 7.1 (8 channels); 0 means "in the
# program config element", which this relay does not read (counted as 2).
_CHANNELS = (2, 1, 2, 3, 4, 5, 6, 8)


@dataclass(frozen=True, slots=True)
class AdtsHeader:
    """A decoded ADTS header (fields a relay and a TS packager need)."""

    mpeg2: bool  # ID bit: 1 = MPEG-2 AAC, 0 = MPEG-4
    protected: bool  # a 16-bit CRC follows the 7 header bytes
    object_type: int  # MPEG-4 audio object type: profile + 1 (2 = AAC-LC)
    sample_rate: int
    channel_config: int
    channels: int
    frame_length: int  # bytes, header (and CRC) included
    blocks: int  # raw data blocks in the frame (1-4)

    @property
    def samples_per_frame(self) -> int:
        return SAMPLES_PER_BLOCK * self.blocks

    @property
    def duration(self) -> float:
        """Seconds of audio in one frame."""
        return self.samples_per_frame / self.sample_rate

    @property
    def bitrate_kbps(self) -> int:
        """The bitrate this frame's size stands for (AAC is VBR-ish: one frame's view)."""
        return round(self.frame_length * 8 * self.sample_rate / self.samples_per_frame / 1000)

    @staticmethod
    def parse(data: bytes) -> AdtsHeader | None:
        """Decode the first 7 bytes of `data`; None if they are not a valid ADTS header."""
        if len(data) < HEADER_SIZE:
            return None
        return _parse_header(bytes(data[:HEADER_SIZE]))

    def same_stream(self, other: AdtsHeader) -> bool:
        """True if `other` may follow this header in one stream."""
        return (
            self.mpeg2 == other.mpeg2
            and self.object_type == other.object_type
            and self.sample_rate == other.sample_rate
            and self.channel_config == other.channel_config
        )


@lru_cache(maxsize=4096)
def _parse_header(raw: bytes) -> AdtsHeader | None:
    b0, b1, b2, b3, b4, b5, b6 = raw
    if b0 != 0xFF or b1 & 0xF6 != 0xF0:  # 12-bit sync, layer 00
        return None
    rate_index = (b2 >> 2) & 0x0F
    if rate_index >= len(_SAMPLE_RATES):
        return None
    protected = not b1 & 1
    length = (b3 & 0x03) << 11 | b4 << 3 | b5 >> 5
    channel_config = (b2 & 1) << 2 | b3 >> 6
    if length < HEADER_SIZE + (CRC_SIZE if protected else 0) + 1:
        return None
    return AdtsHeader(
        mpeg2=bool(b1 & 0x08),
        protected=protected,
        object_type=(b2 >> 6) + 1,
        sample_rate=_SAMPLE_RATES[rate_index],
        channel_config=channel_config,
        channels=_CHANNELS[channel_config],
        frame_length=length,
        blocks=(b6 & 0x03) + 1,
    )


@dataclass(frozen=True, slots=True)
class AdtsFrame:
    """One complete ADTS frame: `data` starts with the header bytes."""

    header: AdtsHeader
    data: bytes

    @property
    def duration(self) -> float:
        return self.header.duration


def codecs_attribute(header: AdtsHeader) -> str:
    """The RFC 6381 `CODECS` value for an HLS playlist: `mp4a.40.<object type>`, the object
    type in the header (2 for AAC-LC; HE-AAC streams signal SBR implicitly and also say 2
    in ADTS, the core they are built on)."""
    return f"mp4a.40.{header.object_type}"


class AdtsFrameReader:
    """Push parser: `feed()` bytes in any chunking, get back the complete frames.

    Sync rule (as `relay.mp3.Mp3FrameReader`): outside sync, a header is only accepted when
    the bytes right after its frame are another valid header of the same stream; in sync,
    one header of the same stream is enough. Anything else is garbage: it is dropped,
    counted in `skipped_bytes`, and sync is lost. At most about two frames stay buffered.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._last: AdtsHeader | None = None
        self.skipped_bytes = 0
        self.frames = 0

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for more input."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[AdtsFrame]:
        """Consume `data`; return the frames completed by it, in stream order."""
        buf = self._buf + data if self._buf else bytes(data)
        out: list[AdtsFrame] = []
        pos = self._scan(buf, out)
        self._buf = buf[pos:]
        self.frames += len(out)
        return out

    def flush(self) -> list[AdtsFrame]:
        """End of stream: the last frame if the buffer holds exactly one valid frame;
        anything else left over counts as skipped."""
        buf, self._buf, self._last = self._buf, b"", None
        header = AdtsHeader.parse(buf)
        if header is not None and len(buf) == header.frame_length:
            self.frames += 1
            return [AdtsFrame(header, buf)]
        self.skipped_bytes += len(buf)
        return []

    def _scan(self, buf: bytes, out: list[AdtsFrame]) -> int:
        """Emit the frames of `buf` into `out`; return how many bytes were consumed. Every
        decision only looks at bytes that are present, so chunking does not matter."""
        pos, end, last = 0, len(buf), self._last
        while pos <= end - HEADER_SIZE:
            header = _parse_header(buf[pos : pos + HEADER_SIZE]) if buf[pos] == 0xFF else None
            if header is not None:
                nxt = pos + header.frame_length
                if last is not None and last.same_stream(header):
                    if nxt > end:
                        break
                else:
                    if nxt + HEADER_SIZE > end:
                        break
                    follower = _parse_header(buf[nxt : nxt + HEADER_SIZE])
                    if follower is None or not follower.same_stream(header):
                        header = None
                if header is not None:
                    out.append(AdtsFrame(header, buf[pos:nxt]))
                    last, pos = header, nxt
                    continue
            last = None
            nxt = buf.find(0xFF, pos + 1)
            nxt = nxt if nxt >= 0 else end
            self.skipped_bytes += nxt - pos
            pos = nxt
        self._last = last
        return pos
