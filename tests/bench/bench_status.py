"""Control API: `GET /v1/streams/{id}/status` latency at a fixed request rate (DESIGN
"Performance targets": p99 ≤ 20 ms at 500 req/s, measured there with k6).

Our node runs in its own process (fresh database, rate limits off, LOG_LEVEL=WARNING) and
relays a fake Icecast source registered as a public stream, so the status carries a live
relay's figures. The load is open-loop, as k6's `constant-arrival-rate`: request i is due
at start + i / rate whatever happened to earlier ones, and its latency runs from when it was
due to its last body byte, so a server that falls behind shows it in the figures instead of
slowing the client down (no coordinated omission). The client is Python (k6 is not on this
machine); `tests/load/status.js` is the same scenario for k6, for operators.

    .venv/bin/python -m tests.bench.bench_status        # or: make bench
    BENCH_RATE=1000 BENCH_SECONDS=30 .venv/bin/python -m tests.bench.bench_status

`BENCH_RATE` (default 500 req/s), `BENCH_SECONDS` (default 20, after a 2 s warm-up),
`BENCH_CONNECTIONS` (default 64: the most requests in flight)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

import aiohttp

from tests.bench.harness import (
    cpu_seconds,
    env_float,
    env_int,
    fresh_database,
    percentile,
    postgres_cpu,
    print_table,
    register_stream,
    run_node,
    tail,
)
from tests.sources import IcecastSource

P99_TARGET = 0.020
WARM_UP_SECONDS = 2.0


@dataclass(frozen=True)
class Sample:
    latencies: list[float]  # seconds, of the answered requests
    errors: int  # non-200 answers and failed requests
    late_start: float  # how far the client itself fell behind the schedule, at worst
    seconds: float


@dataclass(frozen=True)
class Run:
    sample: Sample
    server_cpu: float  # seconds, over the sample
    db_cpu: float | None
    body_bytes: int


async def load(url: str, rate: float, seconds: float, connections: int) -> Sample:
    """`rate` requests a second for `seconds`, open-loop (module doc)."""
    latencies: list[float] = []
    errors = 0
    late = 0.0

    async def one(session: aiohttp.ClientSession, due: float) -> None:
        nonlocal errors
        try:
            async with session.get(url) as response:
                await response.read()
                ok = response.status == 200
        except aiohttp.ClientError:
            ok = False
        if ok:
            latencies.append(time.perf_counter() - due)
        else:
            errors += 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        pending: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late = max(late, -delay)
            task = asyncio.create_task(one(session, due))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending)
        elapsed = time.perf_counter() - start
    return Sample(latencies, errors, late, elapsed)


async def measure(rate: float, seconds: float, connections: int) -> Run:
    async with (
        fresh_database() as database,
        IcecastSource(title="Bench - Status") as source,
        run_node(database, RATE_LIMIT_ENABLED="false", LOG_LEVEL="WARNING") as node,
    ):
        stream_id = await register_stream(
            node.base_url, source.url, source.mount, source.admin_password
        )
        url = f"{node.base_url}/v1/streams/{stream_id}/status"
        await load(url, rate, WARM_UP_SECONDS, connections)
        server_before, db_before = cpu_seconds(node.pid), postgres_cpu()
        sample = await load(url, rate, seconds, connections)
        server = cpu_seconds(node.pid) - server_before
        db_after = postgres_cpu()
        db = db_after - db_before if db_after is not None and db_before is not None else None
        if node.process.poll() is not None:
            raise RuntimeError(f"our node died:\n{tail(node.log)}")
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            size = len(await response.read())
    return Run(sample, server, db, size)


def rows(run: Run, rate: float) -> list[tuple[str, str, str, str]]:
    sample = run.sample
    answered = len(sample.latencies)
    ms = [1000 * value for value in sample.latencies] or [0.0]

    def per_request(cpu: float | None) -> str:
        return f"{1e6 * cpu / answered:.0f} us" if cpu is not None and answered else "-"

    achieved = f"{answered / sample.seconds:,.0f} req/s"
    return [
        ("requests answered 200", f"{answered:,}", "-", ""),
        ("achieved rate", achieved, "-", f"{rate:,.0f} req/s"),
        ("latency p50", f"{percentile(ms, 50):.1f} ms", "-", ""),
        ("latency p90", f"{percentile(ms, 90):.1f} ms", "-", ""),
        ("latency p99", f"{percentile(ms, 99):.1f} ms", "-", f"<= {1000 * P99_TARGET:.0f} ms"),
        ("latency max", f"{max(ms):.1f} ms", "-", ""),
        ("errors (non-200, failed)", str(sample.errors), "-", "0"),
        ("server CPU per request", per_request(run.server_cpu), "-", ""),
        ("postgres CPU per request", per_request(run.db_cpu), "-", ""),
        ("client behind schedule, worst", f"{1000 * sample.late_start:.1f} ms", "-", ""),
    ]


async def run() -> str:
    rate = env_float("BENCH_RATE", 500.0)
    seconds = env_float("BENCH_SECONDS", 20.0)
    connections = env_int("BENCH_CONNECTIONS", 64)
    result = await measure(rate, seconds, connections)
    notes = [
        f"open-loop, {rate:g} req/s for {seconds:g} s after a {WARM_UP_SECONDS:g} s warm-up,"
        f" at most {connections} in flight; latency from each request's due time to its last"
        " byte",
        f"status body {result.body_bytes:,} B, a public stream relaying a fake Icecast source; no"
        " reference server: the target is DESIGN's (k6 there, `tests/load/status.js`)",
        f"client and server share the {os.cpu_count()} cores; 'client behind schedule' over"
        " a few ms means the client, not the server, limited the rate",
    ]
    return print_table(
        "Control API: GET /v1/streams/{id}/status at a fixed rate",
        rows(result, rate),
        notes,
        reference="-",
    )


def test_status() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    asyncio.run(run())
