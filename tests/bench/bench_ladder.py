"""Track ladder: CPU seconds per audio minute for `build_ladder` on a generated stereo
44.1 kHz FLAC (4 minutes by default), beside one `ffmpeg` command doing the same encodes.

Ours: user + system time of this process (RUSAGE_SELF) around `build_ladder`: one decode,
one resample, AAC-LC 64 and 128 kbit/s (PyAV), MP3 128 and 320 kbit/s (the system's LAME),
each muxed to HLS TS segments and a progressive file, plus the waveform, the EBU R128
loudness and the copy of the original.

Reference: RUSAGE_CHILDREN around

    ffmpeg -i in.flac \\
      -map 0:a -c:a aac -b:a 64k \\
        -f tee "[f=mp4:movflags=+faststart]aac_64.m4a|[f=hls:…]aac_64/index.m3u8" \\
      -map 0:a -c:a libmp3lame -b:a 128k \\
        -f tee "[f=mp3]mp3_128.mp3|[f=hls:…]mp3_128/index.m3u8" \\
      … aac 128k, libmp3lame 320k

i.e. one input, four encodes, each encode's packets written to its progressive file and its
HLS playlist by the tee muxer (never encoded twice), like ours. It measures no waveform and
no loudness. Runs alternate (ours, ffmpeg, ours, …) so a busy machine weighs on both; the
table shows medians and the ratio of medians. Run with

    .venv/bin/python -m pytest tests/bench/bench_ladder.py -s -q
    BENCH_LADDER_MINUTES=5 BENCH_LADDER_RUNS=5 .venv/bin/python -m tests.bench.bench_ladder
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hls.ladder import build_ladder, probe_audio
from hls.lame import load_lame
from tests.audiofiles import write_audio
from tests.bench.bench_vod import ensure_ffmpeg
from tests.bench.harness import env_int, print_table

TARGET = 1.1  # issue 13: the ladder costs no more than 1.1 × ffmpeg's CPU
RATE = 44_100
ENCODES = (("aac", 64, "mp4", "aac_64.m4a"), ("libmp3lame", 128, "mp3", "mp3_128.mp3"))
ENCODES += (("aac", 128, "mp4", "aac_128.m4a"), ("libmp3lame", 320, "mp3", "mp3_320.mp3"))


@dataclass(frozen=True, slots=True)
class Run:
    cpu: float
    wall: float


def source_file(minutes: int) -> Path:
    """A cached `minutes`-long stereo FLAC: a few tones, a beat and noise, so the encoders
    have something like music to spend bits on."""
    path = Path(tempfile.gettempdir()) / "mediaserver-bench" / f"ladder-{minutes}min.flac"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    n = minutes * 60 * RATE
    t = np.arange(n) / RATE
    rng = np.random.default_rng(13)
    music = sum(0.08 * np.sin(2 * np.pi * f * t) for f in (110.0, 220.0, 330.0, 440.0, 880.0))
    beat = 0.3 * np.sin(2 * np.pi * 60 * t) * np.exp(-((t % 0.5) * 20))
    left = music + beat + rng.normal(0, 0.03, n)
    right = music * 0.9 + beat + rng.normal(0, 0.03, n)
    samples = np.stack([left, right]).astype(np.float32)
    temp = path.with_suffix(".tmp.flac")
    write_audio(temp, "flac", samples)
    temp.rename(path)
    return path


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def ours(source: Path, work: Path) -> Run:
    shutil.rmtree(work, ignore_errors=True)
    info = probe_audio(source)
    cpu, wall = _cpu(resource.RUSAGE_SELF), time.perf_counter()
    build_ladder(source, work, info=info)
    return Run(_cpu(resource.RUSAGE_SELF) - cpu, time.perf_counter() - wall)


def ffmpeg_command(binary: str, source: Path, work: Path) -> list[str]:
    command = [binary, "-nostdin", "-loglevel", "error", "-y", "-i", str(source)]
    for codec, kbps, muxer, file_name in ENCODES:
        name = file_name.rsplit(".", 1)[0]
        (work / name).mkdir(parents=True)
        options = ":movflags=+faststart" if muxer == "mp4" else ""
        hls = (
            f"[f=hls:hls_time=6:hls_playlist_type=vod:"
            f"hls_segment_filename={work / name}/segment%03d.ts]{work / name}/index.m3u8"
        )
        tee = f"[f={muxer}{options}]{work / file_name}|{hls}"
        command += ["-map", "0:a", "-c:a", codec, "-b:a", f"{kbps}k", "-f", "tee", tee]
    return command


def ffmpeg(binary: str, source: Path, work: Path) -> Run:
    shutil.rmtree(work, ignore_errors=True)
    command = ffmpeg_command(binary, source, work)
    cpu, wall = _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, check=True)
    return Run(_cpu(resource.RUSAGE_CHILDREN) - cpu, time.perf_counter() - wall)


def measure(minutes: int, runs: int) -> str:
    source = source_file(minutes)
    binary, notes = ensure_ffmpeg()
    work = Path(tempfile.mkdtemp(prefix="bench-ladder-"))
    mine: list[Run] = []
    theirs: list[Run] = []
    try:
        for _ in range(runs):
            mine.append(ours(source, work / "ours"))
            if binary:
                theirs.append(ffmpeg(binary, source, work / "ffmpeg"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ours_cpu = statistics.median(r.cpu for r in mine) / minutes
    rows = [["CPU s per audio minute (median)", f"{ours_cpu:.2f}", "-", f"≤ {TARGET} × ffmpeg"]]
    if theirs:
        ref_cpu = statistics.median(r.cpu for r in theirs) / minutes
        rows = [
            ["CPU s per audio minute (median)", f"{ours_cpu:.2f}", f"{ref_cpu:.2f}", "-"],
            ["CPU s per audio minute (best)"]
            + [f"{min(r.cpu for r in side) / minutes:.2f}" for side in (mine, theirs)]
            + ["-"],
            ["ratio ours / ffmpeg (medians)", f"{ours_cpu / ref_cpu:.2f}", "1.00", f"≤ {TARGET}"],
        ]
    rows.append(
        ["wall s (median)"]
        + [
            f"{statistics.median(r.wall for r in side):.1f}" if side else "-"
            for side in (mine, theirs)
        ]
        + ["-"]
    )
    notes = [
        f"{minutes} min stereo 44.1 kHz FLAC, {runs} alternating runs each",
        "both: AAC-LC 64 + 128 kbit/s, MP3 128 + 320 kbit/s, each to HLS TS + a progressive file",
        "ours also: waveform (1800 peaks), EBU R128 loudness, copy of the original",
        "MP3 encoder: "
        + ("the system's libmp3lame (ctypes)" if load_lame() else "PyAV's bundled libmp3lame"),
        *notes,
    ]
    if not binary:
        notes.append("ffmpeg not installed: reference not run")
    return print_table(
        f"Track ladder: {minutes}-minute FLAC → 4 encodes", rows, notes, reference="ffmpeg"
    )


def test_ladder_benchmark() -> None:
    measure(env_int("BENCH_LADDER_MINUTES", 4), env_int("BENCH_LADDER_RUNS", 3))


if __name__ == "__main__":
    test_ladder_benchmark()
