"""`GET /v1/nowplaying` (every public station on air, in one call) against the per-stream
status route at the same fixed request rate, on one node relaying `BENCH_STATIONS` public
streams of a fake Icecast source: what a crowd of widgets polling the whole directory
costs, next to what polling one station costs. Then `BENCH_FEEDS` clients of the live feed
(`/v1/nowplaying/events`) and a title change at the source: how long until the first and
the last of them has it (the source sends its title every ICY metadata interval, ~1 s).

    .venv/bin/python -m tests.bench.bench_nowplaying        # or: make bench

`BENCH_RATE` (default 500 req/s), `BENCH_SECONDS` (default 10), `BENCH_STATIONS` (20),
`BENCH_FEEDS` (500)."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp

from tests.bench.bench_status import WARM_UP_SECONDS, Sample, load
from tests.bench.harness import (
    cpu_seconds,
    env_float,
    env_int,
    fresh_database,
    percentile,
    print_table,
    register_stream,
    run_node,
)
from tests.sources import IcecastSource


async def sample(url: str, rate: float, seconds: float, pid: int) -> tuple[Sample, float, int]:
    await load(url, rate, WARM_UP_SECONDS, 64)
    before = cpu_seconds(pid)
    result = await load(url, rate, seconds, 64)
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        size = len(await response.read())
    return result, cpu_seconds(pid) - before, size


async def fan_out(
    base_url: str, source: IcecastSource, clients: int, pid: int
) -> tuple[float, float, float]:
    """Seconds from a title change at the source until the first and the last of `clients`
    live-feed clients has it, and the server's CPU seconds meanwhile."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        responses = [await session.get(f"{base_url}/v1/nowplaying/events") for _ in range(clients)]
        for response in responses:
            await response.content.readuntil(b"event: nowplaying")
        title = f"Bench - {time.monotonic()}"
        before, started = cpu_seconds(pid), time.monotonic()
        source.set_title(title)

        async def told(response: aiohttp.ClientResponse) -> float:
            while title.encode() not in await response.content.readline():
                pass
            return time.monotonic() - started

        times = await asyncio.gather(*(told(response) for response in responses))
        cpu = cpu_seconds(pid) - before
        for response in responses:
            response.close()
    return min(times), max(times), cpu


def column(result: Sample, cpu: float, size: int) -> list[str]:
    ms = [1000 * value for value in result.latencies] or [0.0]
    answered = len(result.latencies)
    return [
        f"{answered / result.seconds:,.0f} req/s",
        f"{percentile(ms, 50):.1f} ms",
        f"{percentile(ms, 99):.1f} ms",
        str(result.errors),
        f"{1e6 * cpu / max(1, answered):.0f} us",
        f"{size:,} B",
    ]


async def run() -> str:
    rate = env_float("BENCH_RATE", 500.0)
    seconds = env_float("BENCH_SECONDS", 10.0)
    stations = env_int("BENCH_STATIONS", 20)
    feeds = env_int("BENCH_FEEDS", 500)
    async with (
        fresh_database() as database,
        IcecastSource(title="Bench - Now Playing") as source,
        run_node(database) as node,
    ):
        ids = [
            await register_stream(node.base_url, source.url, source.mount, source.admin_password)
            for _ in range(stations)
        ]
        everything = await sample(f"{node.base_url}/v1/nowplaying", rate, seconds, node.pid)
        one = await sample(f"{node.base_url}/v1/streams/{ids[0]}/status", rate, seconds, node.pid)
        first, last, fanout_cpu = await fan_out(node.base_url, source, feeds, node.pid)
    names = ["achieved rate", "latency p50", "latency p99", "errors", "server CPU / request"]
    table = [
        (name, ours, ref)
        for name, ours, ref in zip([*names, "body"], column(*everything), column(*one), strict=True)
    ]
    table += [
        (f"{feeds} feed clients: title change → first has it", f"{first:.2f} s", "-"),
        (f"{feeds} feed clients: title change → last has it", f"{last:.2f} s", "-"),
        ("server CPU for that change (all stations' events)", f"{fanout_cpu:.3f} s", "-"),
    ]
    return print_table(
        f"GET /v1/nowplaying ({stations} stations) vs GET /v1/streams/{{id}}/status",
        table,
        [
            f"open-loop, {rate:g} req/s for {seconds:g} s each after a warm-up; client and"
            f" server share the {os.cpu_count()} cores",
        ],
        columns=("metric", "/v1/nowplaying", "one stream's status"),
    )


def test_nowplaying() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    asyncio.run(run())
