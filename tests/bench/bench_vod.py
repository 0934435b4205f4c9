"""VOD: a 60-minute 128 kbit/s MP3 → HLS (10 s segments) in-process by `segment_to_hls`,
beside `ffmpeg -i in.mp3 -c:a copy -f hls -hls_time 10 out.m3u8` on the same file.

CPU is user + system time from getrusage: RUSAGE_SELF for us (the event loop and every
worker thread: parsing, muxing, the store's file I/O), RUSAGE_CHILDREN for ffmpeg. Ours
is measured three ways, so the table says where the time goes:

- into a `FileStore` (what the server does: temp file, fsync, md5 etag, sidecar, rename,
  fsync of the directory, per object),
- into plain files written once each (what ffmpeg does: no fsync, no etag),
- with the segments discarded (parsing, cutting and muxing only).

The source is built once and cached in the temp dir: a 60 s libmp3lame clip whose audio
frames are repeated by `Mp3Joiner`, behind an ID3v2 tag. Run with

    .venv/bin/python -m pytest tests/bench/bench_vod.py -s -q
    BENCH_VOD_MINUTES=10 BENCH_VOD_RUNS=5 .venv/bin/python -m tests.bench.bench_vod
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path

from hls.concat import Mp3Joiner
from hls.filestore import FileStore
from hls.store import ObjectInfo
from hls.vod import VodResult, segment_to_hls
from tests.audio import make_mp3
from tests.bench.harness import env_int, print_table

TARGET_CPU = 0.70  # DESIGN.md: ffmpeg's figure on this machine, CPU-s
TARGET_WALL = 0.80
SOURCE_KEY = "uploads/bench/source.mp3"
CLIP_SECONDS = 60.0


def source_file(minutes: int) -> Path:
    """The cached `minutes`-long 128 kbit/s MP3 (built on first use)."""
    path = Path(tempfile.gettempdir()) / "mediaserver-bench" / f"vod-{minutes}min-128k.mp3"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tagged = make_mp3(CLIP_SECONDS, id3_title="Bench Mix")
    size = 0
    for byte in tagged[6:10]:  # id3.org ID3v2.4 §6.2: a synchsafe size
        size = size << 7 | byte
    tag = tagged[: 10 + size]
    joiner = Mp3Joiner()
    joiner.begin_track()
    audio = joiner.feed(make_mp3(CLIP_SECONDS)) + joiner.end_track()
    temp = path.with_suffix(".tmp")
    with open(temp, "wb") as file:
        file.write(tag)
        for _ in range(int(minutes * 60 / CLIP_SECONDS)):
            file.write(audio)
    os.replace(temp, path)
    return path


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class PlainFiles(FileStore):
    """Writes each object straight to its file, once: no temp file, fsync, etag or sidecar
    (what ffmpeg's HLS muxer does)."""

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> ObjectInfo:
        data = b"".join([chunk async for chunk in chunks])
        path = self.root / key
        await asyncio.to_thread(_write, path, data)
        return ObjectInfo(key, len(data), "")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        file.write(data)


class Discard(FileStore):
    """Reads like a FileStore, throws writes away: parsing, cutting and muxing only."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.written = 0

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> ObjectInfo:
        size = sum([len(chunk) async for chunk in chunks])
        if key.endswith(".ts"):
            self.written += size
        return ObjectInfo(key, size, "")


@dataclass
class Run:
    cpu: float
    wall: float
    segments: int
    ts_bytes: int


async def ours(store_class: Callable[[Path], FileStore], source: Path, work: Path) -> Run:
    shutil.rmtree(work, ignore_errors=True)
    (work / SOURCE_KEY).parent.mkdir(parents=True)
    try:
        os.link(source, work / SOURCE_KEY)  # the upload, already in the store
    except OSError:
        shutil.copyfile(source, work / SOURCE_KEY)
    store = store_class(work)
    await store.open()
    gc.collect()
    cpu, wall = cpu_self(), time.perf_counter()
    result: VodResult = await segment_to_hls(store, SOURCE_KEY, "uploads/bench/hls", 10)
    cpu, wall = cpu_self() - cpu, time.perf_counter() - wall
    if isinstance(store, Discard):
        ts_bytes = store.written
    else:
        ts_bytes = sum((work / key).stat().st_size for key, _ in result.segments)
    await store.close()
    return Run(cpu, wall, len(result.segments), ts_bytes)


def ffmpeg(binary: str, source: Path, work: Path) -> Run:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    command = [binary, "-nostdin", "-loglevel", "error", "-y", "-i", str(source)]
    command += ["-c:a", "copy", "-f", "hls", "-hls_time", "10", str(work / "out.m3u8")]
    cpu, wall = cpu_children(), time.perf_counter()
    subprocess.run(command, check=True)
    cpu, wall = cpu_children() - cpu, time.perf_counter() - wall
    segments = sorted(work.glob("*.ts"))
    return Run(cpu, wall, len(segments), sum(p.stat().st_size for p in segments))


def median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(run, field) for run in runs)


def best(runs: list[Run], field: str) -> float:
    return min(getattr(run, field) for run in runs)


async def measure(minutes: int, runs: int) -> str:
    source = source_file(minutes)
    mp3_bytes = source.stat().st_size
    work = Path(tempfile.mkdtemp(prefix="bench-vod-"))
    try:
        await ours(FileStore, source_file(1), work / "warmup")  # imports, codec tables
        results: dict[str, list[Run]] = {"filestore": [], "plain": [], "discard": []}
        reference: list[Run] = []
        binary = shutil.which("ffmpeg")
        for _ in range(runs):  # interleaved, so a noisy moment hits every variant
            results["filestore"].append(await ours(FileStore, source, work / "ours"))
            results["plain"].append(await ours(PlainFiles, source, work / "plain"))
            results["discard"].append(await ours(Discard, source, work / "discard"))
            if binary:
                reference.append(await asyncio.to_thread(ffmpeg, binary, source, work / "ff"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def figure(runs_: list[Run], field: str) -> str:
        if not runs_:
            return "n/a"
        return f"{median(runs_, field):.2f} (best {best(runs_, field):.2f})"

    ref_cpu, ref_wall = figure(reference, "cpu"), figure(reference, "wall")
    main = results["filestore"]
    rows = [
        ("CPU s, into FileStore (durable)", figure(main, "cpu"), ref_cpu, f"≤ {TARGET_CPU}"),
        ("wall s, into FileStore", figure(main, "wall"), ref_wall, f"≤ {TARGET_WALL}"),
        ("CPU s, into plain files", figure(results["plain"], "cpu"), ref_cpu, ""),
        ("wall s, into plain files", figure(results["plain"], "wall"), ref_wall, ""),
        ("CPU s, parse + mux only", figure(results["discard"], "cpu"), "", ""),
        ("wall s, parse + mux only", figure(results["discard"], "wall"), "", ""),
        ("segments", str(main[0].segments), str(reference[0].segments) if reference else "", ""),
        (
            "TS bytes / MP3 bytes",
            f"{main[0].ts_bytes / mp3_bytes:.3f}",
            f"{reference[0].ts_bytes / mp3_bytes:.3f}" if reference else "",
            "≤ 1.12",
        ),
    ]
    notes = [
        f"{minutes} min of 128 kbit/s 44.1 kHz stereo ({mp3_bytes / 1e6:.1f} MB), {runs} runs "
        "each, median (best); CPU = user + system, all threads (RUSAGE_SELF / _CHILDREN)",
        "reference: ffmpeg -i in.mp3 -c:a copy -f hls -hls_time 10 out.m3u8"
        + ("" if binary else " (ffmpeg not on PATH: not run)"),
        "FileStore costs per object: temp file, fsync, md5 etag, .meta.json sidecar (fsynced),"
        " two renames, fsync of the directory; ffmpeg writes each file once",
    ]
    return print_table(f"VOD: {minutes}-minute MP3 → HLS (stream copy)", rows, notes)


def test_vod_benchmark() -> None:
    minutes = env_int("BENCH_VOD_MINUTES", 60)
    asyncio.run(measure(minutes, env_int("BENCH_VOD_RUNS", 3)))


if __name__ == "__main__":
    test_vod_benchmark()
