"""Live HLS: how soon a finished segment is in `live.m3u8`, what segmenting costs per live
stream, and how much MPEG-TS adds to the MP3 it carries; ffmpeg's HLS muxer as reference.

(a) Latency. A node runs in this process (HLS_SEGMENT_SECONDS=6) relaying a fake Icecast
    source that notes when it writes each chunk of frames. A client polls `live.m3u8`
    every 20 ms; a segment's latency is the time from the write of the chunk holding its
    last frame (known from the EXTINF durations, which count whole frames) to the first
    poll that lists it. `LiveHls.stats.publish_delays` (last frame arrived → in the window,
    as the node measures it) is shown next to it.
(b) CPU. 10 minutes of the same 128 kbit/s frames packaged into 6 s segments by
    `TsSegmenter` in this thread (`time.process_time`), as a share of a core for a stream
    playing in real time; vs `ffmpeg -c:a copy -f hls -hls_time 6` on the same MP3 file
    (RUSAGE_CHILDREN, process start-up included). Also the live node's own mux time.
(c) TS bytes / MP3 bytes over those 10 minutes.

    .venv/bin/python -m tests.bench.bench_live_hls        # or: make bench
    BENCH_SECONDS=30 .venv/bin/python -m tests.bench.bench_live_hls
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from hls.packager import TsSegmenter
from mediaserver.app import build_app
from mediaserver.config import SETTINGS, Settings
from mediaserver.keys import load_secrets
from relay.manager import RELAYS
from tests.audio import make_mp3
from tests.bench.harness import (
    env_float,
    free_port,
    fresh_database,
    percentile,
    print_table,
    register_stream,
)
from tests.livefeed import Mp3Clip
from tests.sources import CLIP_SECONDS, IcecastSource

SEGMENT_SECONDS = 6
OFFLINE_MINUTES = 10
POLL_SECONDS = 0.02
LATENCY_TARGET = 0.25
CPU_TARGET = 0.5  # % of a core per live stream
RATIO_TARGET = 1.12
_EXTINF = re.compile(r"#EXTINF:([0-9.]+),")
_SEQUENCE = re.compile(r"#EXT-X-MEDIA-SEQUENCE:(\d+)")


class StampedSource(IcecastSource):
    """The fake Icecast source, noting the monotonic time of every chunk it writes to the
    first listener (the relay): chunk k holds frames [k * per_chunk, (k + 1) * per_chunk)."""

    def __init__(self) -> None:
        super().__init__(title="Bench - Live HLS")
        self.stamps: list[float] = []
        self._stamping = False

    async def _pump(self, writer: asyncio.StreamWriter, icy: object) -> None:
        if self._stamping:  # a second connection: not the one we measure
            await super()._pump(writer, icy)  # type: ignore[arg-type]
            return
        self._stamping = True
        await super()._pump(_Stamping(writer, self.stamps), icy)  # type: ignore[arg-type]

    @property
    def frames_per_chunk(self) -> int:
        return self._clip.frames_per_chunk

    @property
    def frame_duration(self) -> float:
        return self._clip.frame_duration


class _Stamping:
    def __init__(self, writer: asyncio.StreamWriter, stamps: list[float]) -> None:
        self._writer, self._stamps = writer, stamps

    def write(self, data: bytes) -> None:
        self._writer.write(data)
        self._stamps.append(time.monotonic())

    async def drain(self) -> None:
        await self._writer.drain()


@dataclass
class Live:
    latencies: list[float] = field(default_factory=list)  # source write → in playlist
    publish_delays: list[float] = field(default_factory=list)  # node's own figure
    mux_seconds: float = 0.0
    media_seconds: float = 0.0
    process_cpu: float = 0.0  # this whole process (node, source, poller) over the run
    seconds: float = 0.0


@contextlib.asynccontextmanager
async def in_process_node(database_url: str, data_dir: Path) -> AsyncIterator[web.Application]:
    port = free_port()
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        port=port,
        hls_segment_seconds=SEGMENT_SECONDS,
        rate_limit_enabled=False,
        password_hash_profile="fast",
        log_level="WARNING",
        allow_private_media_urls=True,  # the bench's source listens on loopback
    )
    app = build_app(settings, load_secrets(settings))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield app
    finally:
        await runner.cleanup()


async def measure_live(seconds: float) -> Live:
    result = Live()
    with tempfile.TemporaryDirectory(prefix="bench-hls-") as tmp:
        async with (
            fresh_database() as database_url,
            StampedSource() as source,
            in_process_node(database_url, Path(tmp) / "data") as app,
        ):
            port = app[SETTINGS].port
            stream_id = await register_stream(
                f"http://127.0.0.1:{port}", source.url, source.mount, source.admin_password
            )
            relay = app[RELAYS].relay(uuid.UUID(stream_id))
            assert relay is not None
            cpu0 = time.process_time()
            seen = await poll_playlist(f"http://127.0.0.1:{port}", stream_id, seconds)
            result.process_cpu = time.process_time() - cpu0
            result.seconds = seconds
            stats = relay.hls.stats
            result.publish_delays = list(stats.publish_delays)
            result.mux_seconds = stats.mux_seconds
            result.media_seconds = sum(duration for duration, _ in seen.values())
            result.latencies = latencies(seen, source)
    return result


async def poll_playlist(
    base_url: str, stream_id: str, seconds: float
) -> dict[int, tuple[float, float]]:
    """Poll `live.m3u8` for `seconds`: {sequence: (EXTINF duration, first time listed)}."""
    seen: dict[int, tuple[float, float]] = {}
    url = f"{base_url}/v1/streams/{stream_id}/live.m3u8"
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            async with session.get(url) as response:
                text = await response.text() if response.status == 200 else ""
            now = time.monotonic()
            found = _SEQUENCE.search(text)
            if found:
                first = int(found.group(1))
                for offset, duration in enumerate(_EXTINF.findall(text)):
                    seen.setdefault(first + offset, (float(duration), now))
            await asyncio.sleep(POLL_SECONDS)
    return seen


def latencies(seen: dict[int, tuple[float, float]], source: StampedSource) -> list[float]:
    """Source write of each segment's last frame → first poll listing it. Needs every
    segment from the run's first (the window holds 6, polled every 20 ms: none is missed);
    a run numbers its segments from the wall clock (`hls.window.sequence_origin`)."""
    out: list[float] = []
    frames = 0
    for sequence in range(min(seen), max(seen) + 1) if seen else ():
        if sequence not in seen:
            return out
        duration, listed = seen[sequence]
        frames += round(duration / source.frame_duration)
        chunk = (frames - 1) // source.frames_per_chunk
        if chunk < len(source.stamps):
            out.append(listed - source.stamps[chunk])
    return out


@dataclass
class Packaging:
    cpu: float  # seconds
    wall: float
    ts_bytes: int
    mp3_bytes: int
    frames: int

    @property
    def core_percent(self) -> float:
        """% of a core needed to keep up with one stream playing in real time."""
        return 100 * self.cpu / (OFFLINE_MINUTES * 60)

    @property
    def ratio(self) -> float:
        return self.ts_bytes / self.mp3_bytes


def ten_minutes() -> tuple[Mp3Clip, list[bytes]]:
    clip = Mp3Clip.parse(make_mp3(CLIP_SECONDS))
    count = round(OFFLINE_MINUTES * 60 / clip.frame_duration)
    return clip, [clip.frames[i % len(clip.frames)] for i in range(count)]


def package_ours(clip: Mp3Clip, frames: list[bytes]) -> Packaging:
    """Cut like LiveHls (as many whole frames as fit in the target) and package each."""
    per_segment = int(SEGMENT_SECONDS / clip.frame_duration)
    segmenter = TsSegmenter(44_100, 1152)
    cuts = [frames[i : i + per_segment] for i in range(0, len(frames), per_segment)]
    total = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for cut in cuts:
        total += len(segmenter.package(cut))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return Packaging(cpu, wall, total, sum(map(len, frames)), len(frames))


def package_ffmpeg(binary: str, frames: list[bytes]) -> Packaging:
    with tempfile.TemporaryDirectory(prefix="bench-ffmpeg-") as tmp:
        source = Path(tmp) / "in.mp3"
        source.write_bytes(b"".join(frames))
        out = Path(tmp) / "out"
        out.mkdir()
        before, wall0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run(
            [
                binary,
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-i",
                str(source),
                "-c:a",
                "copy",
                "-f",
                "hls",
                "-hls_time",
                str(SEGMENT_SECONDS),
                "-hls_list_size",
                "0",
                "-hls_segment_filename",
                str(out / "seg%05d.ts"),
                str(out / "out.m3u8"),
            ],
            check=True,
        )
        wall = time.perf_counter() - wall0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        ts = sum(path.stat().st_size for path in out.glob("*.ts"))
        return Packaging(cpu, wall, ts, source.stat().st_size, len(frames))


def table(live: Live, ours: Packaging, ffmpeg: Packaging | None) -> str:
    def ref(value: str) -> str:
        return value if ffmpeg is not None else "-"

    lat, pub = live.latencies or [float("nan")], live.publish_delays or [float("nan")]
    live_share = 100 * live.mux_seconds / max(1e-9, live.media_seconds)
    rows = [
        (
            "segment in live.m3u8 after last source byte, p50",
            f"{percentile(lat, 50):.3f} s",
            "-",
            f"<= {LATENCY_TARGET} s",
        ),
        ("  same, p99", f"{percentile(lat, 99):.3f} s", "-", f"<= {LATENCY_TARGET} s"),
        ("  same, max", f"{max(lat):.3f} s", "-", ""),
        ("  segments measured", f"{len(live.latencies)}", "-", ""),
        (
            "node's publish delay (LiveHls.stats) p50/p99",
            f"{percentile(pub, 50):.3f}/{percentile(pub, 99):.3f} s",
            "-",
            f"<= {LATENCY_TARGET} s",
        ),
        (
            f"segmenting CPU, % of a core per stream ({OFFLINE_MINUTES} min)",
            f"{ours.core_percent:.3f} %",
            ref(f"{ffmpeg.core_percent:.3f} %" if ffmpeg else ""),
            f"<= {CPU_TARGET} %",
        ),
        (
            "  CPU per MP3 frame",
            f"{1e6 * ours.cpu / ours.frames:.1f} us",
            ref(f"{1e6 * ffmpeg.cpu / ffmpeg.frames:.1f} us" if ffmpeg else ""),
            "",
        ),
        (
            f"  CPU / wall for {OFFLINE_MINUTES} min of audio",
            f"{ours.cpu:.2f} / {ours.wall:.2f} s",
            ref(f"{ffmpeg.cpu:.2f} / {ffmpeg.wall:.2f} s" if ffmpeg else ""),
            "",
        ),
        (
            "live node: mux time in thread, % of media time",
            f"{live_share:.3f} %",
            "-",
            f"<= {CPU_TARGET} %",
        ),
        (
            "live node: whole process CPU (node+source+poller)",
            f"{100 * live.process_cpu / max(1e-9, live.seconds):.2f} %",
            "-",
            "",
        ),
        (
            f"TS bytes / MP3 bytes ({OFFLINE_MINUTES} min)",
            f"{ours.ratio:.4f}",
            ref(f"{ffmpeg.ratio:.4f}" if ffmpeg else ""),
            f"<= {RATIO_TARGET}",
        ),
    ]
    notes = [
        "reference: ffmpeg -c:a copy -f hls -hls_time 6 (its CPU includes process start-up)"
        if ffmpeg
        else "ffmpeg not installed (apt-get install ffmpeg): no reference run",
        f"latency window {live.seconds:.0f} s, playlist polled every {1000 * POLL_SECONDS:.0f}"
        " ms (adds up to that much); HLS_SEGMENT_SECONDS=6",
    ]
    return print_table("Live HLS: ours vs ffmpeg's HLS muxer (128 kbit/s MP3)", rows, notes)


async def run() -> str:
    live = await measure_live(env_float("BENCH_SECONDS", 75.0))
    clip, frames = ten_minutes()
    ours = package_ours(clip, frames)
    binary = shutil.which("ffmpeg")
    ffmpeg = package_ffmpeg(binary, frames) if binary else None
    return table(live, ours, ffmpeg)


def test_live_hls() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    asyncio.run(run())
