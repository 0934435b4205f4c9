"""MP3 or ADTS AAC frames to MPEG-TS segments for HLS, by stream copy with PyAV (no
re-encoding). AAC goes in as ADTS frames, PES stream_type 0x0F (ISO/IEC 13818-1 Table 2-34,
"ISO/IEC 13818-7 Audio with ADTS transport syntax"), which libavformat writes when the
packets start with an ADTS header; MP3 as stream_type 0x03/0x04.

Blocking and CPU-bound: callers run `TsSegmenter.package` in a worker thread
(`asyncio.to_thread`); nothing here touches asyncio.

Muxer tuning (libavformat's mpegts muxer, measured on 6 s of 128 kbit/s MP3): PyAV's
defaults put every MP3 frame in its own PES and repeat PAT/PMT every 0.1 s, so the TS is
~1.6 x the MP3. We hand the muxer several frames per packet instead (a PES may carry many
audio frames, which are self-delimiting; players split them again) and write the tables
only at the start of each segment: ~1.05 x, at about 1 µs of CPU per MP3 frame.
"""

from __future__ import annotations

import io
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from fractions import Fraction
from itertools import accumulate
from operator import itemgetter

import av
from av.packet import Packet
from av.stream import Stream

TS_CLOCK = 90_000  # PTS/DTS run at 90 kHz (ISO/IEC 13818-1 §2.4.3.7)
_TIME_BASE = Fraction(1, TS_CLOCK)
_TS_PACKET = 188
_SDT_PID = 0x0011

# The PCR runs this far behind the PTS, so a frame's bytes arrive before it is due
# (ISO/IEC 13818-1 §2.4.2, T-STD). With mpegts_copyts the muxer leaves our PTS alone and
# writes PCR = DTS - max_delay.
_PCR_LEAD_US = 100_000
_PCR_LEAD = _PCR_LEAD_US * TS_CLOCK // 1_000_000
# 1.4 s, where ffmpeg's own HLS output starts; anything >= _PCR_LEAD keeps the PCR positive.
DEFAULT_START_PTS = 126_000

# One PES per group of frames: at most this many bytes (PES_packet_length is 16 bits, and
# larger PES only save another 1 %) and half a second (the muxer only writes a PCR at a PES
# start, so this bounds the PCR interval).
_PES_MAX_BYTES = 8192
_PES_MAX_SECONDS = Fraction(1, 2)

_MUXER_OPTIONS = {
    # Each segment is muxed by a fresh muxer, which writes the tables first (RFC 8216 §3.2);
    # repeating them inside a <= 10 s segment only costs bytes.
    "pat_period": "3600",
    "sdt_period": "3600",
    "mpegts_copyts": "1",
    "max_delay": str(_PCR_LEAD_US),
}


class TsSegmenter:
    """Packages consecutive runs of one stream's audio frames (`codec`: "mp3", or "aac"
    for ADTS frames) into self-contained TS segments.

    Timestamps run on from one segment to the next: the PTS is derived from an exact count
    of samples, so 90 kHz rounding never accumulates. Every segment starts with PAT/PMT and
    decodes on its own. With `timed_id3` the PMT of every segment declares a timed-ID3
    stream (stream_type 0x15, Apple "Timed Metadata for HTTP Live Streaming"), so the PMT
    stays identical whether or not a segment carries a tag.

    A source that comes back with another sample rate needs a new segmenter; start it at
    the old one's `next_pts` so timestamps keep running forwards.

    Not thread-safe: the running timestamp is unguarded state, so one thread at a time may
    call `package` (the live shell awaits each `asyncio.to_thread` call before the next).
    Segmenters of different streams can run in parallel threads.
    """

    def __init__(
        self,
        sample_rate: int,
        samples_per_frame: int,
        *,
        start_pts: int = DEFAULT_START_PTS,
        timed_id3: bool = True,
        codec: str = "mp3",
    ) -> None:
        if codec not in ("mp3", "aac"):
            raise ValueError(f"unsupported codec {codec!r}: mp3 or aac")
        if sample_rate <= 0 or samples_per_frame <= 0:
            raise ValueError("sample rate and samples per frame must be positive")
        if start_pts < _PCR_LEAD:
            raise ValueError(f"start_pts must be >= {_PCR_LEAD} so the PCR stays positive")
        self.sample_rate = sample_rate
        self.samples_per_frame = samples_per_frame
        self.start_pts = start_pts
        self.timed_id3 = timed_id3
        self.codec = codec
        self._samples = 0  # packaged so far: the exact clock behind every PTS
        self._pes_frames = max(1, int(_PES_MAX_SECONDS * sample_rate / samples_per_frame))

    @property
    def next_pts(self) -> int:
        """90 kHz PTS of the first frame of the next segment (not wrapped to 33 bits)."""
        return self._pts(self._samples)

    @property
    def samples(self) -> int:
        """Audio samples packaged so far."""
        return self._samples

    def package(
        self, frames: Sequence[bytes], discontinuity: bool = False, id3: bytes | None = None
    ) -> bytes:
        """One complete TS segment holding `frames`, which follow the previous segment's.

        `discontinuity` sets the TS discontinuity_indicator on every PID (ISO/IEC 13818-1
        §2.4.3.5) for a segment after an EXT-X-DISCONTINUITY; `id3` is a complete ID3v2 tag
        carried as timed metadata at the segment's first PTS.
        """
        if not frames:
            raise ValueError("a segment needs at least one audio frame")
        if id3 is not None and (not self.timed_id3 or not id3.startswith(b"ID3")):
            raise ValueError("id3 needs timed_id3=True and a complete ID3v2 tag")
        options = dict(_MUXER_OPTIONS)
        if discontinuity:
            options["mpegts_flags"] = "+initial_discontinuity"
        samples = self._samples
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mpegts", options=options) as output:
            audio = output.add_mux_stream(self.codec, rate=self.sample_rate, time_base=_TIME_BASE)
            if self.timed_id3:
                metadata = output.add_data_stream("timed_id3")
                if id3 is not None:
                    start = self._pts(samples)
                    output.mux(_packet(id3, metadata, start, start))
            for group in self._groups(frames):
                end = samples + len(group) * self.samples_per_frame
                data = b"".join(group)
                output.mux(_packet(data, audio, self._pts(samples), self._pts(end)))
                samples = end
        self._samples = samples  # only once the whole segment is muxed
        with buffer.getbuffer() as ts:
            # libavformat writes a DVB SDT before PAT and PMT; no HLS client reads it, and
            # RFC 8216 §3.2 wants the segment to start with PAT and PMT.
            return bytes(ts[_TS_PACKET:] if _pid(ts) == _SDT_PID else ts)

    def _pts(self, samples: int) -> int:
        return self.start_pts + samples * TS_CLOCK // self.sample_rate

    def _groups(self, frames: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
        """`frames` cut into consecutive groups, each as many frames as fit in
        _PES_MAX_BYTES and `_pes_frames` (at least one). Per group, not per frame: the
        checks and the running sizes are computed in C, the group ends found by bisection."""
        if not frames:
            yield frames
            return
        mask, sync = _SYNC[self.codec]
        if (
            min(map(len, frames)) < 4
            or set(map(_first_byte, frames)) != {0xFF}
            or any(b & mask != sync for b in set(map(_second_byte, frames)))
        ):
            raise ValueError("frames must be complete MPEG audio or ADTS frames (frame sync)")
        ends = list(accumulate(map(len, frames), initial=0))  # ends[k]: bytes of frames[:k]
        count, most = len(frames), self._pes_frames
        start = 0
        while start < count:
            fit = bisect_right(ends, ends[start] + _PES_MAX_BYTES, start + 1) - 1
            stop = min(count, start + most, max(fit, start + 1))
            yield frames[start:stop]
            start = stop


_first_byte, _second_byte = itemgetter(0), itemgetter(1)
#: (mask, value) of a frame's second byte: MPEG audio's 11-bit sync; ADTS's 12-bit sync
#: with layer 00.
_SYNC = {"mp3": (0xE0, 0xE0), "aac": (0xF6, 0xF0)}


def _pid(ts: memoryview) -> int:
    return (ts[1] & 0x1F) << 8 | ts[2]  # ISO/IEC 13818-1 §2.4.3.2


def _packet(data: bytes, stream: Stream, pts: int, end: int) -> Packet[Stream]:
    packet = Packet(data)
    packet.stream = stream
    packet.time_base = _TIME_BASE
    packet.pts = packet.dts = pts
    packet.duration = end - pts
    return packet
