"""Uploads → VOD HLS: real MP3 from libmp3lame into a FileStore, segmented in-process, then
decoded segment by segment and played over HTTP by libavformat's HLS client."""

from __future__ import annotations

import array
import asyncio
import dataclasses
import io
import math
import random
import tracemalloc
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen.id3 import ID3, TPE1
from mutagen.mp3 import MP3

from hls.concat import Mp3Joiner
from hls.playlist import parse_media_playlist
from hls.vod import (
    MANIFEST_NAME,
    SYNC_WINDOW,
    UNSUPPORTED,
    CorruptMp3,
    Mp3Validator,
    NotMp3,
    probe_mp3,
    segment_name,
    segment_to_hls,
)
from mediaserver.storage import ObjectBatch, ObjectInfo, StoreError
from mediaserver.storage.filesystem import FileStore
from relay.mp3 import Frame, Mp3FrameReader
from tests.audio import decode, decode_duration, make_mp3

HLS_TIME = 10
SOURCE = "uploads/7/source.mp3"
DEST = "uploads/7/hls"


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    sample_rate: int
    channels: int
    samples_per_frame: int = 1152


UPLOADS = {
    "3min-44k-stereo": lambda: Upload("3min", make_mp3(180.0), 44_100, 2),
    "48k-mono": lambda: Upload("mono", make_mp3(95.0, sample_rate=48_000, channels=1), 48_000, 1),
    "id3-title": lambda: Upload("tagged", make_mp3(25.0, id3_title="Night Drive"), 44_100, 2),
}


def audio_frames(data: bytes) -> list[Frame]:
    reader = Mp3FrameReader()
    frames = reader.feed(data) + reader.flush()
    return [f for f in frames if not f.is_info_frame]


def joined(*files: bytes) -> bytes:
    joiner = Mp3Joiner()
    out = []
    for data in files:
        joiner.begin_track()
        out += [joiner.feed(data), joiner.end_track()]
    return b"".join(out)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStore]:
    async with FileStore(tmp_path / "objects") as opened:
        yield opened


def decode_segment(ts: bytes) -> tuple[int, int, int]:
    """(samples, sample rate, first PTS) of one TS segment, decoded on its own."""
    with av.open(io.BytesIO(ts), format="mpegts") as container:
        frames = list(container.decode(audio=0))
    return sum(f.samples for f in frames), frames[0].sample_rate, frames[0].pts or 0


# segment_to_hls -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(UPLOADS))
async def test_segments_are_frame_aligned_and_cover_the_audio(name: str, store: FileStore) -> None:
    upload = UPLOADS[name]()
    await store.put_bytes(SOURCE, upload.data)

    result = await segment_to_hls(store, SOURCE, DEST, hls_time=HLS_TIME)

    frame = upload.samples_per_frame / upload.sample_rate
    frames = len(audio_frames(upload.data))
    per_segment = HLS_TIME * upload.sample_rate // upload.samples_per_frame
    durations = [d for _, d in result.segments]
    assert len(durations) == math.ceil(frames / per_segment)
    assert durations[:-1] == [per_segment * frame] * (len(durations) - 1)
    assert all(0 < d <= HLS_TIME for d in durations)
    assert all(abs(d / frame - round(d / frame)) < 1e-6 for d in durations)  # whole frames
    assert abs(sum(durations) - frames * frame) < frame
    assert result.duration == pytest.approx(sum(durations))

    manifest = parse_media_playlist((await store.read(result.manifest_key)).decode())
    assert result.manifest_key == f"{DEST}/{MANIFEST_NAME}"
    assert (manifest.playlist_type, manifest.endlist) == ("VOD", True)
    assert manifest.target_duration == HLS_TIME
    assert [s.uri for s in manifest.segments] == [
        f"segment{n:03d}.ts" for n in range(len(durations))
    ]
    assert [s.duration for s in manifest.segments] == pytest.approx(durations, abs=5e-4)
    assert not any(s.discontinuity for s in manifest.segments)
    listed = [info.key async for info in store.list(f"{DEST}/")]
    assert listed == sorted([key for key, _ in result.segments] + [result.manifest_key])

    segments = [await store.read(key) for key, _ in result.segments]
    decoded = await asyncio.to_thread(lambda: [decode_segment(ts) for ts in segments])
    source = await asyncio.to_thread(decode_duration, upload.data)
    played = sum(samples for samples, _, _ in decoded) / upload.sample_rate
    print(f"\n{name}: {len(segments)} segments, {played:.3f} s decoded vs {source:.3f} s")
    assert abs(played - source) <= 0.1
    assert {rate for _, rate, _ in decoded} == {upload.sample_rate}
    total_ts = sum(map(len, segments))
    assert total_ts <= 1.12 * sum(len(f.data) for f in audio_frames(upload.data))


async def test_hls_client_plays_the_upload_over_http(store: FileStore, aiohttp_server: Any) -> None:
    upload = UPLOADS["3min-44k-stereo"]()
    await store.put_bytes(SOURCE, upload.data)
    result = await segment_to_hls(store, SOURCE, DEST)
    app = web.Application()
    app.router.add_static("/media/", store.root)
    server = await aiohttp_server(app)
    url = str(server.make_url(f"/media/{result.manifest_key}"))

    played = await asyncio.to_thread(decode, url, format="hls")  # libavformat blocks
    source = await asyncio.to_thread(decode_duration, upload.data)
    print(f"\nHLS client played {played.duration:.3f} s of {source:.3f} s")
    assert (played.codec, played.sample_rate, played.channels) == ("mp3float", 44_100, 2)
    assert abs(played.duration - source) <= 0.1


class RecordingBatch(ObjectBatch):
    """A FileStore batch that reports its keys to its store once committed (durable)."""

    def __init__(self, store: RecordingStore, inner: ObjectBatch) -> None:
        super().__init__(store)
        self._recorder, self._inner, self._keys = store, inner, []

    async def add(self, key: str, data: bytes, content_type: str | None = None) -> None:
        await self._inner.add(key, data, content_type)
        self._keys.append(key)

    async def commit(self) -> None:
        await self._inner.commit()
        self._recorder.completed += self._keys

    async def abort(self) -> None:
        await self._inner.abort()


class RecordingStore(FileStore):
    """A FileStore that remembers the order in which objects became durable."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.completed: list[str] = []

    def batch(self, limit: int = 4) -> ObjectBatch:
        return RecordingBatch(self, super().batch(limit))

    async def put(self, key: str, chunks: Any, content_type: str | None = None) -> ObjectInfo:
        info = await super().put(key, chunks, content_type)
        self.completed.append(key)
        return info

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        info = await super().put_bytes(key, data, content_type)
        self.completed.append(key)
        return info


async def test_manifest_is_written_after_every_segment(tmp_path: Path) -> None:
    async with RecordingStore(tmp_path) as store:
        await store.put_bytes(SOURCE, make_mp3(25.0))
        store.completed.clear()
        result = await segment_to_hls(store, SOURCE, DEST, hls_time=4)
    assert store.completed[-1] == result.manifest_key
    assert sorted(store.completed[:-1]) == [key for key, _ in result.segments]
    assert len(result.segments) == 7  # 25 s in 4 s segments


class FailingBatch(ObjectBatch):
    """A batch whose store breaks (disk full) at the `fail_at`-th segment."""

    def __init__(self, store: FileStore, inner: ObjectBatch, fail_at: int) -> None:
        super().__init__(store)
        self._inner, self._left = inner, fail_at

    async def add(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._left -= 1
        if self._left == 0:
            raise StoreError("No space left on device")
        await self._inner.add(key, data, content_type)

    async def commit(self) -> None:
        await self._inner.commit()

    async def abort(self) -> None:
        await self._inner.abort()


class BreakingStore(FileStore):
    def __init__(self, root: Path, fail_at: int | None = None) -> None:
        super().__init__(root)
        self.fail_at = fail_at

    def batch(self, limit: int = 4) -> ObjectBatch:
        inner = super().batch(limit)
        return inner if self.fail_at is None else FailingBatch(self, inner, self.fail_at)


def rendition_files(store: FileStore) -> list[str]:
    return sorted(path.name for path in (store.root / DEST).iterdir())


async def test_a_run_dying_midway_leaves_no_manifest_and_a_rerun_overwrites_cleanly(
    tmp_path: Path,
) -> None:
    data = make_mp3(25.0)
    async with BreakingStore(tmp_path / "objects") as store:
        await store.put_bytes(SOURCE, data)
        first = await segment_to_hls(store, SOURCE, DEST, hls_time=4)  # 7 segments
        assert len(first.segments) == 7
        # Only the manifest has a sidecar; no temp file is left.
        names = [segment_name(n) for n in range(7)]
        assert rendition_files(store) == sorted([*names, MANIFEST_NAME, "manifest.m3u8.meta.json"])

        store.fail_at = 3  # the store breaks while the job runs again
        with pytest.raises(StoreError):
            await segment_to_hls(store, SOURCE, DEST, hls_time=10)
        assert MANIFEST_NAME not in rendition_files(store)  # nobody is told it is complete

        store.fail_at = None  # the retry, with the new setting
        again = await segment_to_hls(store, SOURCE, DEST, hls_time=10)
        assert [key.rsplit("/", 1)[1] for key, _ in again.segments] == names[:3]
        assert rendition_files(store) == sorted(
            [*names[:3], MANIFEST_NAME, "manifest.m3u8.meta.json"]
        )
        manifest = parse_media_playlist((await store.read(again.manifest_key)).decode())
        assert [s.uri for s in manifest.segments] == names[:3]
        segments = [await store.read(key) for key, _ in again.segments]
    decoded = await asyncio.to_thread(lambda: [decode_segment(ts) for ts in segments])
    played = sum(samples for samples, _, _ in decoded) / 44_100
    assert abs(played - await asyncio.to_thread(decode_duration, data)) <= 0.1


async def test_the_result_describes_the_source_from_the_same_pass(store: FileStore) -> None:
    source = make_mp3(30.0, id3_title="Night Drive")
    tags = ID3(io.BytesIO(source))
    tags.add(TPE1(encoding=3, text="DJ Nova"))
    out = io.BytesIO(source)
    tags.save(out)
    data = out.getvalue()
    await store.put_bytes(SOURCE, data)
    result = await segment_to_hls(store, SOURCE, DEST)
    probed = probe_mp3(data)
    assert (result.info.title, result.info.artist) == ("Night Drive", "DJ Nova")
    assert result.info.duration == pytest.approx(result.duration)
    assert result.info.duration == pytest.approx(probed.duration)
    assert result.info == dataclasses.replace(probed, duration=result.info.duration)
    assert (result.info.bitrate_kbps, result.info.sample_rate, result.info.channels) == (
        128,
        44_100,
        2,
    )


def cut_at_a_frame_boundary(data: bytes, share: float) -> bytes:
    """The first `share` of the file's frames, its Xing/Info header frame kept: a copy cut
    off exactly between two frames, so only the header tells."""
    reader = Mp3FrameReader()
    frames = reader.feed(data) + reader.flush()
    assert frames[0].is_info_frame
    return b"".join(f.data for f in frames[: int(len(frames) * share)])


async def test_a_file_its_header_shows_cut_off_is_refused_when_asked(store: FileStore) -> None:
    cut = cut_at_a_frame_boundary(make_mp3(60.0), 0.5)
    await store.put_bytes(SOURCE, cut)
    with pytest.raises(CorruptMp3, match=r"truncated after (29|30)\.\d s") as caught:
        await segment_to_hls(store, SOURCE, DEST, refuse_truncated=True)
    assert caught.value.message == probe_error(cut)
    assert [info.key async for info in store.list(f"{DEST}/")] == []
    # Without asking (external playlist tracks): played as the shorter file it is.
    result = await segment_to_hls(store, SOURCE, DEST)
    assert result.duration == pytest.approx(30.0, abs=0.1)


def test_header_frames_announce_the_length_mutagen_reads() -> None:
    data = make_mp3(61.3)
    info_frame, *audio = Mp3FrameReader().feed(data)
    assert info_frame.announced_frames is not None
    assert all(f.announced_frames is None for f in audio)
    announced = info_frame.announced_frames * info_frame.header.duration
    assert announced == pytest.approx(MP3(io.BytesIO(data)).info.length)
    # A Fraunhofer VBRI header (32 bytes after the frame header): the count at byte 14.
    vbri = bytearray(info_frame.data)
    vbri[4:] = bytes(len(vbri) - 4)
    vbri[36:54] = b"VBRI" + bytes(10) + (12_345).to_bytes(4, "big")
    frame = Frame(info_frame.header, bytes(vbri))
    assert (frame.is_info_frame, frame.announced_frames) == (True, 12_345)


def probe_error(data: bytes) -> str:
    with pytest.raises(CorruptMp3) as caught:
        probe_mp3(data)
    return caught.value.message


async def test_sample_rate_change_starts_a_discontinuity(store: FileStore) -> None:
    # Two recordings glued into one file (a DJ's mixtape made with `cat`).
    first, second = make_mp3(12.0), make_mp3(9.0, sample_rate=48_000)
    await store.put_bytes(SOURCE, joined(first, second))

    result = await segment_to_hls(store, SOURCE, DEST, hls_time=5)

    manifest = parse_media_playlist((await store.read(result.manifest_key)).decode())
    flags = [s.discontinuity for s in manifest.segments]
    assert flags == [False, False, False, True, False]  # 12 s → 5+5+2, 9 s → 5+4
    decoded = []
    for key, _ in result.segments:
        decoded.append(await asyncio.to_thread(decode_segment, await store.read(key)))
    assert [rate for _, rate, _ in decoded] == [44_100] * 3 + [48_000] * 2
    # Timestamps run on across the change: the 48 kHz part starts where 44.1 kHz ended.
    samples_before = sum(samples for samples, _, _ in decoded[:3])
    expected_pts = decoded[0][2] + samples_before * 90_000 // 44_100
    assert abs(decoded[3][2] - expected_pts) <= 2


async def test_not_an_mp3_is_refused_before_anything_is_written(store: FileStore) -> None:
    png = b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(2_000_000)
    await store.put_bytes(SOURCE, png)
    with pytest.raises(NotMp3) as caught:
        await segment_to_hls(store, SOURCE, DEST)
    assert (caught.value.message, caught.value.detected) == (UNSUPPORTED, "a PNG image")
    assert [info.key async for info in store.list(DEST)] == []


async def test_damaged_upload_fails_and_leaves_no_segments(store: FileStore) -> None:
    await store.put_bytes(SOURCE, damaged(make_mp3(60.0), share=0.10))
    with pytest.raises(CorruptMp3, match="damaged"):
        await segment_to_hls(store, SOURCE, DEST)
    assert [info.key async for info in store.list(DEST)] == []


async def test_memory_stays_flat_for_a_60_mb_file(store: FileStore, tmp_path: Path) -> None:
    frames = audio_frames(make_mp3(30.0))
    clip = b"".join(f.data for f in frames)  # 30 s, ~480 kB
    repeats = 60_000_000 // len(clip) + 1

    async def sixty_mb() -> AsyncIterator[bytes]:
        for _ in range(repeats):
            yield clip

    await store.put(SOURCE, sixty_mb())
    path = store.root / SOURCE
    assert path.stat().st_size > 60_000_000

    tracemalloc.start()
    try:
        result = await segment_to_hls(store, SOURCE, DEST)
        _, segment_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        info = await asyncio.to_thread(probe_mp3, path)
        _, probe_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    mb = segment_peak / 1e6, probe_peak / 1e6
    print(f"\npeak Python memory: segmenting {mb[0]:.1f} MB, probe {mb[1]:.1f} MB")
    assert segment_peak < 20_000_000
    assert probe_peak < 20_000_000
    assert result.duration == pytest.approx(repeats * len(frames) * 1152 / 44_100)
    assert info.duration == pytest.approx(result.duration)


# probe_mp3 ------------------------------------------------------------------------------


async def test_probe_reads_tags_and_duration(tmp_path: Path) -> None:
    path = tmp_path / "track.mp3"
    path.write_bytes(make_mp3(20.0, id3_title="Night Drive"))
    tags = ID3(path)
    tags.add(TPE1(encoding=3, text="DJ Nova"))
    tags.save(path)
    data = path.read_bytes()

    for source in (path, str(path), data):
        info = probe_mp3(source)
        assert (info.title, info.artist) == ("Night Drive", "DJ Nova")
        assert (info.sample_rate, info.channels, info.bitrate_kbps) == (44_100, 2, 128)
    # What the HLS rendition plays: every audio frame. A decoder reading the file itself
    # trims the encoder delay and padding the LAME tag announces (< 2 frames).
    assert info.duration == pytest.approx(len(audio_frames(data)) * 1152 / 44_100)
    decoded = await asyncio.to_thread(decode_duration, data)
    assert 0 <= info.duration - decoded < 2 * 1152 / 44_100


def test_probe_mono_48k_without_tags() -> None:
    info = probe_mp3(make_mp3(10.0, sample_rate=48_000, channels=1, bitrate=64_000))
    assert (info.sample_rate, info.channels, info.bitrate_kbps) == (48_000, 1, 64)
    assert (info.title, info.artist) == (None, None)
    assert info.duration == pytest.approx(10.0, abs=0.05)


def wav_bytes() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44_100)
        samples = (round(12_000 * math.sin(n / 7)) for n in range(2 * 44_100 * 2))
        w.writeframes(array.array("h", samples).tobytes())
    return out.getvalue()


def encoded(codec: str, fmt: str, seconds: float = 2.0) -> bytes:
    """A tone in another codec (AAC in ADTS, MPEG Layer II) via PyAV."""
    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=44_100, layout="stereo")
        pcm = array.array("h", (round(9_000 * math.sin(n / 9)) for n in range(1152)))
        for n in range(int(seconds * 44_100 / 1152)):
            frame = av.AudioFrame(format="s16p", layout="stereo", samples=1152)
            frame.sample_rate, frame.pts = 44_100, n * 1152
            for plane in frame.planes:
                plane.update(pcm.tobytes())
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


NOT_MP3 = {
    "png": (lambda: b"\x89PNG\r\n\x1a\n" + random.Random(2).randbytes(300_000), "a PNG image"),
    "wav": (wav_bytes, "WAV audio"),
    "text": (lambda: b"Tracklist:\n1. Intro\n2. Night Drive\n" * 5_000, None),
    "empty": (lambda: b"", "an empty file"),
    "random": (lambda: random.Random(3).randbytes(1_000_000), None),
    "aac": (lambda: encoded("aac", "adts"), "AAC audio"),
    "mp2": (lambda: encoded("mp2", "mp2"), "MPEG Layer II audio"),
}


@pytest.mark.parametrize("name", list(NOT_MP3))
def test_probe_refuses_what_is_not_mp3(name: str, tmp_path: Path) -> None:
    make, detected = NOT_MP3[name]
    data = make()
    path = tmp_path / "upload.mp3"  # the extension proves nothing
    path.write_bytes(data)
    for source in (data, path):
        with pytest.raises(NotMp3) as caught:
            probe_mp3(source)
        assert caught.value.message == UNSUPPORTED
        if detected is not None:
            assert caught.value.detected == detected


def test_probe_refuses_a_file_cut_off_mid_way() -> None:
    # The LAME Info tag announces 60 s; only about half arrived (an interrupted upload).
    data = make_mp3(60.0)
    with pytest.raises(CorruptMp3, match=r"truncated after (29|30)\.\d s") as caught:
        probe_mp3(data[: len(data) // 2])
    assert caught.value.message.startswith("Transcoding error: the file is truncated after")


def test_probe_refuses_a_cbr_file_without_header_that_ends_inside_a_frame() -> None:
    # No Xing/Info header announces the length, but the last frame's header declares more
    # bytes than the file holds: encoders write whole frames, so the file was cut off.
    data = joined(make_mp3(60.0))  # audio frames only, no Info frame
    cut = data[: len(data) // 2 + 100]
    seconds = len(audio_frames(cut)) * 1152 / 44_100
    with pytest.raises(CorruptMp3) as caught:
        probe_mp3(cut)
    assert caught.value.message == (
        f"Transcoding error: the file is truncated after {seconds:.1f} s."
    )
    assert 29.9 < seconds < 30.1
    for sizes in ([1], [4096], [1_000_003], [7, 1441, 70_000]):  # however the bytes arrive
        validator = Mp3Validator()
        pos, i = 0, 0
        while pos < len(cut):
            validator.feed(cut[pos : pos + sizes[i % len(sizes)]])
            pos, i = pos + sizes[i % len(sizes)], i + 1
        validator.finish()
        assert validator.cut_off, sizes
        whole = Mp3Validator()
        whole.feed(data)
        whole.finish()
        assert not whole.cut_off


def test_probe_accepts_a_file_without_header_cut_at_a_frame_boundary() -> None:
    # Cut exactly between two frames, nothing tells it from a shorter file: accepted.
    frames = audio_frames(joined(make_mp3(60.0)))
    whole = b"".join(f.data for f in frames[: len(frames) // 2])
    info = probe_mp3(whole)
    assert info.duration == pytest.approx(len(frames) // 2 * 1152 / 44_100)
    # An ID3v1 tag after the last whole frame is not a cut-off frame either.
    tagged = whole + b"TAG" + bytes(125)
    assert probe_mp3(tagged).duration == info.duration


async def test_a_file_ending_inside_a_frame_fails_and_leaves_no_segments(
    store: FileStore,
) -> None:
    data = joined(make_mp3(40.0))
    await store.put_bytes(SOURCE, data[: len(data) - 200])
    with pytest.raises(CorruptMp3, match=r"truncated after (39\.\d|40\.0) s"):
        await segment_to_hls(store, SOURCE, DEST, hls_time=HLS_TIME, refuse_truncated=True)
    assert [info.key async for info in store.list(f"{DEST}/")] == []
    # Without `refuse_truncated` (external playlist tracks) it plays what is there.
    result = await segment_to_hls(store, SOURCE, DEST, hls_time=HLS_TIME)
    assert result.duration == pytest.approx(len(audio_frames(data)) * 1152 / 44_100, abs=0.03)


def test_segment_names_have_at_least_three_digits() -> None:
    assert [segment_name(n) for n in (0, 7, 42, 999, 1000, 12_345)] == [
        "segment000.ts",
        "segment007.ts",
        "segment042.ts",
        "segment999.ts",
        "segment1000.ts",
        "segment12345.ts",
    ]


def damaged(data: bytes, share: float) -> bytes:
    """`data` with `share` of its bytes, in the middle, overwritten by noise."""
    size = int(len(data) * share)
    start = len(data) // 2 - size // 2
    noise = bytes(b & 0x7F for b in random.Random(4).randbytes(size))  # no frame syncs
    return data[:start] + noise + data[start + size :]


def test_probe_tolerates_a_small_glitch_but_not_a_damaged_file() -> None:
    data = make_mp3(60.0)
    info = probe_mp3(damaged(data, share=0.01))  # ~0.6 s of noise: a glitch, playable
    assert 58.5 < info.duration < 60.0
    with pytest.raises(CorruptMp3, match=r"damaged \(1\d% of it is not MP3 audio\)"):
        probe_mp3(damaged(data, share=0.12))


def test_probe_finds_audio_after_junk_within_the_sync_window() -> None:
    junk = bytes(b & 0x7F for b in random.Random(5).randbytes(SYNC_WINDOW - 2_000))
    assert probe_mp3(junk + make_mp3(5.0)).duration == pytest.approx(5.0, abs=0.05)
    with pytest.raises(NotMp3):
        probe_mp3(junk * 2 + make_mp3(5.0))


def test_a_lone_info_frame_is_not_audio() -> None:
    reader = Mp3FrameReader()
    first = (reader.feed(make_mp3(1.0)) + reader.flush())[0]
    assert first.is_info_frame
    info_frame = first.data  # the LAME Info frame, then nothing
    with pytest.raises(CorruptMp3, match="no audio"):
        probe_mp3(info_frame)


def verdict(data: bytes, sizes: list[int]) -> tuple[str, int]:
    validator = Mp3Validator()
    frames = 0
    pos, i = 0, 0
    try:
        while pos < len(data):
            size = sizes[i % len(sizes)]
            frames += len(validator.feed(data[pos : pos + size]))
            pos, i = pos + size, i + 1
        frames += len(validator.finish())
    except (NotMp3, CorruptMp3) as exc:
        return type(exc).__name__, frames
    return "ok", frames


_JUNK = bytes(b & 0x7F for b in random.Random(6).randbytes(SYNC_WINDOW + 4_000))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    junk=st.sampled_from([0, 1_000, SYNC_WINDOW - 500, SYNC_WINDOW + 3_000]),
    sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=4),
)
def test_validator_verdict_does_not_depend_on_chunking(junk: int, sizes: list[int]) -> None:
    data = _JUNK[:junk] + make_mp3(3.0)
    assert verdict(data, sizes) == verdict(data, [len(data)])
