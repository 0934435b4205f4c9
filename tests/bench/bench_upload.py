"""Upload throughput: MP3 files of ~10, ~50 and ~100 MB POSTed as multipart/form-data over
loopback HTTP to `POST /v1/uploads/audio` of our node (its own process, fresh database,
filesystem store, `JOB_WORKERS=0` so transcoding does not run during the measurement).

For each file (median of BENCH_UPLOAD_RUNS uploads after a warm-up one, each deleted through
the API once measured): MB/s from the first byte sent to the 201 (by then the file has been
checked at its start, fsynced in the store and recorded with its job), the server's CPU for
it, and its RSS sampled every 10 ms from /proc: the peak must not grow with the file (the body is
streamed to the store, never held whole). The references are a bare aiohttp server in
its own process reading the same multipart body and either throwing it away (the ceiling of
HTTP and multipart parsing in Python here) or writing it to a file and fsyncing it (the
least a server that keeps uploads durable must do: this machine's disk is the limit).

    .venv/bin/python -m tests.bench.bench_upload          # or: make bench
    BENCH_UPLOAD_MINUTES=104 BENCH_UPLOAD_RUNS=5 .venv/bin/python -m tests.bench.bench_upload
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.bench.bench_vod import source_file
from tests.bench.harness import (
    PASSWORD,
    ROOT,
    cpu_seconds,
    env_int,
    env_ints,
    free_port,
    fresh_database,
    print_table,
    rss_bytes,
    run_node,
    stop_process,
    wait_for_port,
)

MB = 1_000_000
MiB = 1024 * 1024
MINUTES = (10, 52, 104)  # of 128 kbit/s audio: ~10, ~50 and ~100 MB (the default limit)


@dataclass(frozen=True)
class Run:
    size: int
    seconds: float
    cpu: float
    rss_before: int
    rss_peak: int

    @property
    def mb_per_s(self) -> float:
        return self.size / MB / self.seconds


async def dj_headers(base_url: str) -> dict[str, str]:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    async with aiohttp.ClientSession(base_url) as session:
        account = {"email": email, "password": PASSWORD, "name": "Bench DJ", "role": "dj"}
        async with session.post("/v1/auth/register", json=account) as response:
            assert response.status == 201, await response.text()
        login = {"email": email, "password": PASSWORD}
        async with session.post("/v1/auth/login", json=login) as response:
            assert response.status == 200, await response.text()
            return {"Authorization": f"Bearer {(await response.json())['access_token']}"}


async def peak_rss(pid: int, stop: asyncio.Event) -> int:
    peak = rss_bytes(pid)
    while not stop.is_set():
        peak = max(peak, rss_bytes(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.01)
    return max(peak, rss_bytes(pid))


async def upload(url: str, path: Path, headers: dict[str, str], pid: int) -> tuple[Run, str]:
    """POST `path` (streamed from disk) and watch the server while it is received; the
    figures and the response body."""
    stop = asyncio.Event()
    rss_before = rss_bytes(pid)
    sampler = asyncio.create_task(peak_rss(pid, stop))
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    try:
        with path.open("rb") as file:
            writer = aiohttp.MultipartWriter("form-data")
            writer.append(file, {"Content-Type": "audio/mpeg"}).set_content_disposition(
                "form-data", name="file", filename=path.name
            )
            async with aiohttp.ClientSession() as session:
                async with session.post(url, data=writer, headers=headers) as response:
                    body = await response.text()
                    assert response.status == 201, body
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu
    finally:
        stop.set()
        peak = await sampler
    return Run(path.stat().st_size, seconds, cpu, rss_before, peak), body


async def median_run(
    url: str, path: Path, headers: dict[str, str], pid: int, runs: int, *, delete: bool = False
) -> Run:
    """The median of `runs` uploads (by time), with the highest RSS peak of them all; with
    `delete`, each upload is deleted through the API after it is measured."""
    results = []
    for _ in range(runs):
        run, body = await upload(url, path, headers, pid)
        results.append(run)
        if delete:
            async with aiohttp.ClientSession() as session:
                upload_url = f"{url}/{json.loads(body)['upload_id']}?force=true"
                async with session.delete(upload_url, headers=headers) as response:
                    assert response.status == 204, await response.text()
    results.sort(key=lambda run: run.seconds)
    return replace(results[len(results) // 2], rss_peak=max(r.rss_peak for r in results))


async def discard(request: web.Request) -> web.Response:
    """Reference: read every part of the multipart body, keep nothing."""
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        while await part.read_chunk(256 * 1024):  # type: ignore[union-attr]
            pass
    return web.Response(status=201)


async def to_file(request: web.Request) -> web.Response:
    """Reference: write the file part to a temp file (in a thread) and fsync it."""
    reader = await request.multipart()
    with tempfile.TemporaryFile() as file:
        while (part := await reader.next()) is not None:
            while chunk := await part.read_chunk(1 << 20):  # type: ignore[union-attr]
                await asyncio.to_thread(file.write, chunk)
        await asyncio.to_thread(os.fsync, file.fileno())
    return web.Response(status=201)


@contextlib.asynccontextmanager
async def reference_server() -> AsyncIterator[tuple[int, int]]:
    """The reference server in its own process: (pid, port); POST / discards, /file keeps."""
    port = free_port()
    log = Path("/dev/null")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.bench_upload", "--reference-server", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_for_port(port, process, log)
        yield process.pid, port
    finally:
        await stop_process(process)


async def measure(minutes: list[int], runs: int) -> str:
    paths = [source_file(m) for m in minutes]
    async with fresh_database() as database, run_node(database, JOB_WORKERS="0") as node:
        headers = await dj_headers(node.base_url)
        url = f"{node.base_url}/v1/uploads/audio"
        await median_run(url, paths[0], headers, node.pid, 1, delete=True)  # warm-up
        ours = [await median_run(url, p, headers, node.pid, runs, delete=True) for p in paths]
    async with reference_server() as (pid, port):
        base = f"http://127.0.0.1:{port}"
        await median_run(base, paths[0], {}, pid, 1)
        reference = [await median_run(base, p, {}, pid, runs) for p in paths]
        durable = [await median_run(f"{base}/file", p, {}, pid, runs) for p in paths]
    rows = []
    for mine, ref, disk in zip(ours, reference, durable, strict=True):
        size = f"{mine.size / MB:.0f} MB"
        rows += [
            (f"{size}: MB/s accepted", f"{mine.mb_per_s:.0f}", f"{disk.mb_per_s:.0f}", "-"),
            (f"{size}: MB/s, body discarded", "", f"{ref.mb_per_s:.0f}", "-"),
            (f"{size}: server CPU-s", f"{mine.cpu:.2f}", f"{disk.cpu:.2f}", "-"),
            (f"{size}: server peak RSS (growth)", _rss(mine), _rss(disk), "flat"),
        ]
    growth = (ours[-1].rss_peak - ours[0].rss_peak) / MiB
    return print_table(
        "Upload: multipart POST over loopback (ours: /v1/uploads/audio; reference: a bare "
        "aiohttp server writing the file part to a file + fsync, or discarding it)",
        rows,
        [
            f"peak RSS of our node: {growth:+.1f} MiB from the smallest to the largest file",
            "ours includes the MP3 check, the store's fsync + rename, and the database "
            "transaction before the 201",
        ],
    )


def _rss(run: Run) -> str:
    return f"{run.rss_peak / MiB:.0f} MiB (+{(run.rss_peak - run.rss_before) / MiB:.1f})"


def test_upload_benchmark() -> None:
    asyncio.run(measure(env_ints("BENCH_UPLOAD_MINUTES", MINUTES), env_int("BENCH_UPLOAD_RUNS", 3)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--reference-server"]:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/", discard)
        app.router.add_post("/file", to_file)
        web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None)
    else:
        test_upload_benchmark()
