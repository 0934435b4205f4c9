"""Uploaded MP3 → VOD HLS in the object store: checked by parsing, cut at frame boundaries
and muxed to MPEG-TS by stream copy (no re-encoding, no ffmpeg subprocess).

`Mp3Validator` is the sans-IO check (feed bytes, get audio frames; NotMp3 / CorruptMp3).
`probe_mp3` runs it over a whole file and reads tags with mutagen; `segment_to_hls` streams
an object from the store through it once, muxing segments in a worker thread (one thread
hop per MiB read, i.e. per ~6 segments) while earlier segments are written as one store
batch, and writes the manifest last: its presence means the rendition is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from hls.concat import TrackReader
from hls.id3tags import leading_tags
from hls.packager import DEFAULT_START_PTS, TsSegmenter
from hls.playlist import MediaPlaylist, Segment, render_media_playlist
from hls.vodstore import VodStore
from relay.mp3 import Frame, FrameHeader

MANIFEST_NAME = "manifest.m3u8"
#: Segment file names, as the backlog's `ffmpeg … segment%03d.ts`: segment000.ts,
#: segment001.ts, … segment999.ts, segment1000.ts (at least three digits, more past 999).
SEGMENT_PATTERN = r"segment[0-9][0-9][0-9]+\.ts"  # no braces: aiohttp and OpenAPI paths
SEGMENT_CONTENT_TYPE = "video/mp2t"  # RFC 8216 §3.2
MANIFEST_CONTENT_TYPE = "application/vnd.apple.mpegurl"  # RFC 8216 §4

# Like libavformat's mp3 probe: the audio must be found within 64 KiB after the ID3v2 tag
# (junk after a tag is common), as MIN_FRAMES frames the reader accepts in sync.
SYNC_WINDOW = 64 * 1024
MIN_FRAMES = 3
MAX_GARBAGE = 0.05  # of the non-tag bytes; more is a damaged file, not the odd glitch
# A Xing/VBRI header announcing this much more audio than the file holds means a cut-off
# file: max(1 s, 1 %) tolerates tools that trim a file without rewriting its header.
_TRUNCATION_SECONDS, _TRUNCATION_SHARE = 1.0, 0.01
_PROBE_STEP = 4096  # until the sync is confirmed, decide after every 4 KiB of input
# The input's last bytes kept for `finish`: more than the reader ever holds back (about two
# frames of at most 1441 bytes), so a cut-off last frame can be seen.
_TAIL = 8192
_MAX_WRITES = 8  # segments waiting to be written (~1.3 MB at 128 kbit/s) while more are muxed
#: Leading bytes kept for the ID3v2 tag's title and artist (cover art may be cut off).
TAG_HEAD = 256 * 1024
#: Bytes read (and handed to the worker thread) at a time: one thread hop per MiB.
READ_SIZE = 1 << 20

UNSUPPORTED = "Unsupported file type. Please upload an MP3."

# Leading bytes of what DJs most often upload instead of an MP3, for `NotMp3.detected`.
_MAGIC = (
    (b"RIFF", "WAV audio"),
    (b"fLaC", "FLAC audio"),
    (b"OggS", "Ogg audio"),
    (b"FORM", "AIFF audio"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
)


def segment_name(index: int) -> str:
    """The file name of segment `index` (0-based) of a VOD rendition (`SEGMENT_PATTERN`)."""
    return f"segment{index:03d}.ts"


class Mp3Error(ValueError):
    """The upload cannot be turned into HLS; `message` is meant for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotMp3(Mp3Error):
    """The data is not MPEG audio Layer III. `detected` names what it looks like instead."""

    def __init__(self, message: str = UNSUPPORTED, detected: str | None = None) -> None:
        super().__init__(message)
        self.detected = detected


class CorruptMp3(Mp3Error):
    """The data starts as an MP3 but is truncated or too damaged to publish."""


@dataclass(frozen=True, slots=True)
class Mp3Info:
    """What an upload holds. `bitrate_kbps` is the average for VBR files."""

    duration: float
    bitrate_kbps: int
    sample_rate: int
    channels: int
    title: str | None
    artist: str | None


class Mp3Validator:
    """Sans-IO MP3 check: `feed()` bytes in any chunking, get the audio frames back
    (tags and header frames dropped); `finish()` at the end of the file.

    `feed` raises `NotMp3` as soon as SYNC_WINDOW bytes (tags aside) went by without
    MIN_FRAMES frames, so an upload can be refused after its first chunk; `finish` raises
    `NotMp3` for input without audio frames and `CorruptMp3` when more than MAX_GARBAGE
    of it had to be skipped or no audio frame is left. It sets `cut_off` when the input
    ends inside a frame (a header of the stream whose declared length runs past the end:
    the file was cut off, as encoders only ever write whole frames); `probe_mp3` and
    `segment_to_hls(refuse_truncated=True)` refuse such a file.
    """

    def __init__(self) -> None:
        self.track = TrackReader()
        self.first: FrameHeader | None = None  # of the first audio frame
        self.fed = 0
        self._head = b""
        self._confirmed = False
        self._lead = 0  # junk before the audio (after a tag): not counted as damage
        self._tail = b""  # the input's last _TAIL bytes
        self.cut_off = False  # set by `finish`: the input ended inside a frame

    def feed(self, data: bytes) -> list[Frame]:
        """Consume `data`; return the audio frames it completes."""
        self._tail = data[-_TAIL:] if len(data) >= _TAIL else (self._tail + data)[-_TAIL:]
        if not self._confirmed:
            return self._count(self._probe(bytes(data)))
        self.fed += len(data)
        return self._count(self.track.feed(data))

    def finish(self) -> list[Frame]:
        """End of input: the last frames; raises NotMp3 or CorruptMp3 (see the class)."""
        self.cut_off = self._ends_inside_a_frame()
        frames = self._count(self.track.flush())
        reader = self.track.reader
        if not self._confirmed and (reader.skipped_bytes or not reader.frames):
            raise self._not_mp3()
        if self.first is None:
            raise CorruptMp3("Transcoding error: the file contains no audio.")
        damage = reader.skipped_bytes - self._lead
        share = damage / max(1, self.fed - reader.tag_bytes - self._lead)
        if share > MAX_GARBAGE:
            raise CorruptMp3(
                f"Transcoding error: the file is damaged ({share:.0%} of it is not MP3 audio)."
            )
        return frames

    def _ends_inside_a_frame(self) -> bool:
        """Whether the bytes the reader holds back end inside a frame of the stream: its
        header declares more bytes than are left (after any whole frames before it)."""
        held = self.track.reader.buffered
        if self.first is None or held < 4 or held > len(self._tail):
            return False
        rest = self._tail[len(self._tail) - held :]
        while (header := FrameHeader.parse(rest)) is not None and header.same_stream(self.first):
            if len(rest) < header.frame_length:
                return True
            rest = rest[header.frame_length :]
        return False

    def _probe(self, data: bytes) -> list[Frame]:
        # Decide at fixed input offsets, so the outcome does not depend on the chunking.
        self._head = (self._head + data[:16])[:16]
        frames: list[Frame] = []
        pos = 0
        while pos < len(data) and not self._confirmed:
            piece = data[pos : pos + _PROBE_STEP - self.fed % _PROBE_STEP]
            frames += self.track.feed(piece)
            self.fed += len(piece)
            pos += len(piece)
            if self.track.reader.frames >= MIN_FRAMES:
                self._confirmed = True
                self._lead = self.track.reader.skipped_bytes
            elif self.track.reader.skipped_bytes > SYNC_WINDOW:
                raise self._not_mp3()
        if pos < len(data):
            frames += self.track.feed(data[pos:])
            self.fed += len(data) - pos
        return frames

    def _count(self, frames: list[Frame]) -> list[Frame]:
        if frames and self.first is None:
            self.first = frames[0].header
        return frames

    def _not_mp3(self) -> NotMp3:
        head = self._head
        detected = next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
        if not self.fed:
            detected = "an empty file"
        elif head[:1] == b"\xff" and len(head) > 1 and head[1] & 0xE0 == 0xE0:
            layer = (head[1] >> 1) & 3  # ISO/IEC 11172-3 §2.4.2.3; ADTS has layer 0
            detected = {0: "AAC audio", 2: "MPEG Layer II audio", 3: "MPEG Layer I audio"}.get(
                layer, detected
            )
        elif head[4:8] == b"ftyp":
            detected = "MP4/M4A audio"
        return NotMp3(UNSUPPORTED, detected)


def probe_mp3(source: bytes | str | os.PathLike[str]) -> Mp3Info:
    """Check that `source` (the bytes, or a file path) is a playable MP3 and describe it.

    Blocking (file I/O and parsing): call it through `asyncio.to_thread`. Reads a file once,
    in 1 MiB chunks, so memory does not grow with its size. Title and artist come from the
    ID3v2 tag in the first TAG_HEAD bytes; duration and average bitrate from the audio
    frames counted, which is what the HLS rendition and the joined MP3 play (a decoder
    reading the LAME tag trims the encoder delay and padding, ~50 ms, from the file itself).
    `segment_to_hls` gives the same description of what it segmented (`VodResult.info`).

    Truncation: when the file's Xing/VBRI header announces over max(1 s, 1 %) more audio
    than it holds, or when it ends inside a frame (`Mp3Validator`), it was cut off (an
    interrupted upload or copy): CorruptMp3 "truncated after N s". A file without such a
    header cut exactly at a frame boundary cannot be told from a shorter one: accepted.
    """
    validator = Mp3Validator()
    counted = 0.0
    audio_bytes = 0
    head = b""

    def take(frames: list[Frame]) -> None:
        nonlocal counted, audio_bytes
        counted += _seconds(frames)
        audio_bytes += sum([len(f.data) for f in frames])

    with contextlib.ExitStack() as stack:
        if isinstance(source, bytes):
            chunks: Iterator[bytes] = (
                source[start : start + READ_SIZE] for start in range(0, len(source), READ_SIZE)
            )
        else:
            file = stack.enter_context(open(source, "rb"))
            chunks = iter(functools.partial(file.read, READ_SIZE), b"")
        for chunk in chunks:
            if len(head) < TAG_HEAD:
                head += chunk[: TAG_HEAD - len(head)]
            take(validator.feed(chunk))
    take(validator.finish())
    if (error := _truncation(validator, counted)) is not None:
        raise error
    return _describe(validator, counted, audio_bytes, head)


def _truncation(validator: Mp3Validator, counted: float) -> CorruptMp3 | None:
    """CorruptMp3 when the file ends inside a frame (`Mp3Validator.cut_off`), or its
    Xing/Info or VBRI header frame announces over max(1 s, 1 %) more audio than the
    `counted` seconds it holds."""
    if validator.cut_off:
        return CorruptMp3(f"Transcoding error: the file is truncated after {counted:.1f} s.")
    header_frame = validator.track.header_frame
    frames = header_frame.announced_frames if header_frame is not None else None
    if header_frame is None or frames is None:
        return None
    announced = frames * header_frame.header.duration
    if announced - counted > max(_TRUNCATION_SECONDS, _TRUNCATION_SHARE * announced):
        return CorruptMp3(f"Transcoding error: the file is truncated after {counted:.1f} s.")
    return None


def _describe(validator: Mp3Validator, counted: float, audio_bytes: int, head: bytes) -> Mp3Info:
    first = validator.first
    assert first is not None  # finish() raises when there is no audio frame
    bitrate = round(audio_bytes * 8 / counted / 1000) if counted else first.bitrate_kbps
    title, artist = leading_tags(head)
    return Mp3Info(
        duration=counted,
        bitrate_kbps=bitrate,
        sample_rate=first.sample_rate,
        channels=first.channels,
        title=title,
        artist=artist,
    )


def _seconds(frames: list[Frame]) -> float:
    return sum([f.header.samples_per_frame / f.header.sample_rate for f in frames])


@dataclass(frozen=True, slots=True)
class VodResult:
    """A finished rendition: `segments` are (key, seconds) in playback order; `info`
    describes the source as `probe_mp3` would (from the same pass over it)."""

    duration: float
    segments: list[tuple[str, float]]
    manifest_key: str
    info: Mp3Info


@dataclass(frozen=True, slots=True)
class _Cut:
    ts: bytes
    duration: float
    discontinuity: bool


class _Cutter:
    """Frames → TS segments of at most `hls_time` s, cut at frame boundaries. Blocking:
    one worker thread at a time calls it (each call is awaited before the next)."""

    def __init__(self, hls_time: int) -> None:
        self.validator = Mp3Validator()
        self._hls_time = hls_time
        self._segmenter: TsSegmenter | None = None
        self._rate = 0
        self._limit = 0  # frames per full segment at the current sample rate
        self._frames: list[bytes] = []
        self._discontinuity = False
        self.head = b""  # the input's first TAG_HEAD bytes
        self.audio_bytes = 0
        self.seconds = 0.0  # of the audio cut so far

    def feed(self, data: bytes) -> list[_Cut]:
        if len(self.head) < TAG_HEAD:
            self.head += data[: TAG_HEAD - len(self.head)]
        return self._cut(self.validator.feed(data))

    def finish(self) -> list[_Cut]:
        cuts = self._cut(self.validator.finish())
        if self._frames:
            cuts.append(self._package())
        return cuts

    def _cut(self, frames: list[Frame]) -> list[_Cut]:
        # List comprehensions and slices rather than a Python step per frame: this runs for
        # every frame of every upload (~140 000 in an hour at 44.1 kHz).
        cuts: list[_Cut] = []
        rates = [f.header.sample_rate for f in frames]
        datas = [f.data for f in frames]
        self.audio_bytes += sum(map(len, datas))
        start, n = 0, len(frames)
        while start < n:
            rate = rates[start]
            end = n if start == 0 and rates.count(rate) == n else _run_end(rates, start)
            if rate != self._rate:
                if self._frames:
                    cuts.append(self._package())
                self._restart(frames[start].header)
            while start < end:
                take = min(end - start, self._limit - len(self._frames))
                self._frames += datas[start : start + take]
                start += take
                if len(self._frames) >= self._limit:
                    cuts.append(self._package())
        return cuts

    def _restart(self, header: FrameHeader) -> None:
        # A new sample rate needs a new TS stream; its timestamps run on from the old one's.
        previous = self._segmenter
        self._segmenter = TsSegmenter(
            header.sample_rate,
            header.samples_per_frame,
            start_pts=previous.next_pts if previous else DEFAULT_START_PTS,
            timed_id3=False,
        )
        self._discontinuity = previous is not None
        self._rate = header.sample_rate
        self._limit = max(1, self._hls_time * header.sample_rate // header.samples_per_frame)

    def _package(self) -> _Cut:
        segmenter = self._segmenter
        assert segmenter is not None
        frames, self._frames = self._frames, []
        ts = segmenter.package(frames, discontinuity=self._discontinuity)
        duration = len(frames) * segmenter.samples_per_frame / segmenter.sample_rate
        self.seconds += duration
        cut = _Cut(ts, duration, self._discontinuity)
        self._discontinuity = False
        return cut


def _run_end(rates: list[int], start: int) -> int:
    """The end of the run of equal sample rates starting at `start`."""
    end = start + 1
    while end < len(rates) and rates[end] == rates[start]:
        end += 1
    return end


async def _coalesced(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """At least `size` bytes per chunk (the last aside), so a store with small chunks does
    not cost a thread hop per chunk."""
    parts: list[bytes] = []
    buffered = 0
    async for chunk in chunks:
        parts.append(chunk)
        buffered += len(chunk)
        if buffered >= size:
            yield parts[0] if len(parts) == 1 else b"".join(parts)
            parts, buffered = [], 0
    if buffered:
        yield b"".join(parts)


async def segment_to_hls(
    store: VodStore,
    source_key: str,
    dest_prefix: str,
    hls_time: int = 10,
    *,
    refuse_truncated: bool = False,
) -> VodResult:
    """Turn the MP3 stored under `source_key` into VOD HLS under `dest_prefix`:
    `segment000.ts`, … (at most `hls_time` s each, the last shorter) and, last of all,
    `manifest.m3u8` with relative segment URIs. The source is read once, streamed, never
    loaded whole; `VodResult.info` describes it (duration, bitrate, tags), so nothing else
    needs to read it again.

    The segments go into the store as one `batch()` (on a FileStore: plain files, fsynced
    together at the end); the manifest is written durably only after it is committed, so
    its presence means the rendition is complete. An earlier run's manifest, then its
    segments, are removed before the first segment is written: a run that dies midway
    leaves no manifest, and a run after it leaves no segment of another cut behind.

    A sample-rate change mid-file starts a new TS stream (timestamps running on) after an
    `#EXT-X-DISCONTINUITY`. Raises NotMp3 / CorruptMp3 as `Mp3Validator` does, and with
    `refuse_truncated` CorruptMp3 as `probe_mp3` does for a file cut off (ending inside a
    frame, or shorter than its Xing/VBRI header says; segments written so far are then
    deleted); the store's own errors (`StoreError` from the server's stores) propagate
    (segments are left for a retry to overwrite; without a manifest nobody reads them).
    """
    if hls_time < 1:
        raise ValueError("hls_time must be at least 1 second")
    prefix = dest_prefix.rstrip("/")
    manifest_key = f"{prefix}/{MANIFEST_NAME}"
    cutter = _Cutter(hls_time)
    batch = store.batch(_MAX_WRITES)
    segments: list[Segment] = []

    async def publish(cuts: list[_Cut]) -> None:
        if cuts and not segments:
            await store.delete(manifest_key)
            await store.delete_prefix(f"{prefix}/segment")
        for cut in cuts:
            name = segment_name(len(segments))
            segments.append(Segment(name, cut.duration, discontinuity=cut.discontinuity))
            await batch.add(f"{prefix}/{name}", cut.ts, SEGMENT_CONTENT_TYPE)

    try:
        async with contextlib.aclosing(await store.get(source_key)) as stream:
            async for chunk in _coalesced(stream, READ_SIZE):
                await publish(await asyncio.to_thread(cutter.feed, chunk))
        await publish(await asyncio.to_thread(cutter.finish))
        if refuse_truncated and (error := _truncation(cutter.validator, cutter.seconds)):
            raise error
        await batch.commit()
    except Mp3Error:
        await batch.abort()
        if segments:
            await store.delete_prefix(f"{prefix}/segment")
        raise
    finally:
        await batch.abort()
    playlist = MediaPlaylist(
        target_duration=math.ceil(max(s.duration for s in segments)),  # RFC 8216 §4.3.3.1
        media_sequence=0,
        segments=segments,
        playlist_type="VOD",  # §4.3.3.5
        endlist=True,  # §4.3.3.4
    )
    text = render_media_playlist(playlist).encode()
    await store.put_bytes(manifest_key, text, MANIFEST_CONTENT_TYPE)
    return VodResult(
        duration=sum(s.duration for s in segments),
        segments=[(f"{prefix}/{s.uri}", s.duration) for s in segments],
        manifest_key=manifest_key,
        info=_describe(cutter.validator, cutter.seconds, cutter.audio_bytes, cutter.head),
    )
