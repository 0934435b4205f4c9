"""HLS origin: playlist and segment GETs per second from our routes, beside the framework
floor and nginx serving the same bytes (issue "One way down": ≥ 0.75 of the floor).

The floor is a bare aiohttp handler returning the same bytes from memory under the same
paths, no middleware (`tests/bench/floor.py`), in its own process, served the way our node
is. nginx (`worker_processes 1; access_log off; sendfile on;`) serves them from files.

Our node runs in its own process (fresh database, LOG_LEVEL=WARNING, rate limits ON with a
streaming limit no crowd here reaches, so the per-IP leases are on the path) and relays a
fake Icecast source registered as a public stream; once its `live.m3u8` lists ≥ 3 segments,
the playlist and the newest segment are fetched from it. A short MP3 is uploaded meanwhile
(multipart, the DJ's token) and made a public playlist, so the VOD routes are measured the
same way: the upload's `manifest.m3u8` and a segment (both need the DJ's Bearer token), the
playlist's `stream.m3u8` and a segment.

A third server, "floor + our headers", is the floor answering each URL with the response
headers our node sent for it (Cache-Control, ETag, Vary, Accept-Ranges, Server, the security
headers, X-Request-ID): what aiohttp itself costs for the response the contract asks for,
so the table shows how much of the gap is our code.

Each URL is loaded with `wrk -t1 -cN --latency` and a Lua script that gives every request
its own `User-Agent` and, where the route needs one, a Bearer token taken in turn from
several sessions of the DJ — a crowd of players, not one request repeated byte for byte.
Ours, the floor and nginx are measured one after the other on each URL. The table shows
req/s, the ratios, p99 latency, the server's CPU per request and, for ours, PostgreSQL's
(media GETs check access against rows the node keeps for 1 s, and buffer play counts, so it
stays near zero). On a machine of two or more cores the server measured runs on core 0
and wrk on core 1 (`BENCH_PIN=0`: nothing pinned; PostgreSQL is never pinned): unpinned,
the scheduler now and then puts both on one core, and the ratio of the floor with our
headers to the floor swung between 0.73 and 1.0 from URL to URL in one run (pinned: 0.96 to
1.08). Other work on the machine still moves all figures: compare the ratios of one run.

nginx and wrk are installed with apt-get when absent and we are root (`nginx-light wrk`,
else `nginx`); without nginx its column is empty.

    .venv/bin/python -m tests.bench.bench_origin        # or: make bench
    BENCH_SECONDS=20 BENCH_CONNECTIONS=50,200 .venv/bin/python -m tests.bench.bench_origin

`BENCH_ROUNDS` (default 3): rounds per URL, each loading ours, the floor, the floor with our
headers and nginx in turn; the table shows each server's median round and the median of the
rounds' ratios with their range (one slow spell of the machine moves one round, not the
result). `BENCH_SECONDS` (default 6): wrk duration per load on the live routes;
`BENCH_VOD_SECONDS` (default half of it): on the upload and playlist routes (the callgrind
mode loads each URL for `BENCH_SECONDS`, default 10); `BENCH_CONNECTIONS` (default 50);
`BENCH_TOKENS` (default 16): DJ sessions whose tokens the upload GETs rotate through;
`BENCH_ONLY` (e.g. `playlist,live.m3u8`): only the URLs whose names contain one of these.

What is loaded is made by `tests/bench/origin_targets.py`.

`BENCH_CALLGRIND=1` counts instructions per request instead (`tests/bench/callgrind.py`:
our node and both floors under valgrind's callgrind, 10 connections, `BENCH_SECONDS` per URL
and server, our node's idle background subtracted): the same figure for the same code
whatever else the machine does, so the effect of a change on the request path shows in one
run (requests per second here swing by ±15 % between runs). `BENCH_CALLGRIND_KEEP=DIR`
keeps the dumps there: `callgrind_annotate --inclusive=no` of ours beside the floor's shows
which C functions (the interpreter, regular expressions, header writing) the gap is made of.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import statistics
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.bench import callgrind
from tests.bench.harness import (
    cpu_seconds,
    env_float,
    env_int,
    env_ints,
    fresh_database,
    print_table,
    run_node,
    tail,
)
from tests.bench.origin_targets import Target, targets_of
from tests.bench.references import (
    CROWD_LUA,
    Load,
    ensure_tools,
    pin,
    run_floor,
    run_nginx,
    wrk,
)
from tests.sources import IcecastSource

RATIO_TARGET = 0.75  # of the floor
#: Unless `BENCH_PIN=0`: the server measured on one core, wrk on the other.
SERVER_CPUS, CLIENT_CPUS = {0}, {1}
#: Production defaults but the log level; rate limits stay on (the streaming limit's leases
#: are on the measured path) at rates one load client never reaches, and the DJ may log in
#: once per token.
NODE_SETTINGS = {
    "LOG_LEVEL": "WARNING",
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_STREAMING_PER_MINUTE": "1000000000",
    "RATE_LIMIT_LOGIN_PER_EMAIL_PER_MINUTE": "1000",
    "RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE": "1000",
    "RATE_LIMIT_AUTH_PER_IP_PER_MINUTE": "1000",
}


def only(targets: list[Target]) -> list[Target]:
    """The targets `BENCH_ONLY` names (comma-separated parts of their names), else all."""
    wanted = [w.strip() for w in os.environ.get("BENCH_ONLY", "").split(",") if w.strip()]
    return [t for t in targets if not wanted or any(w in t.name for w in wanted)]


#: One round on a URL: ours, the floor, the floor with our headers, nginx (None: absent).
Round = tuple[Load, Load, Load, Load | None]


@dataclass(frozen=True)
class Result:
    """A URL's rounds: each loads our node, the floor, the floor with our headers and nginx
    in turn, so a slow spell of the machine lands in one round, not on one server."""

    target: Target
    connections: int
    rounds: tuple[Round, ...]

    def median(self, server: int) -> Load | None:
        """The `server`'s round of median req/s (0 ours, 1 floor, 2 floor + headers, 3 nginx)."""
        loads = sorted((r[server] for r in self.rounds if r[server]), key=lambda x: x.rps)
        return loads[len(loads) // 2] if loads else None

    def ratio(self, a: int, b: int) -> str:
        """Median of the rounds' req/s ratios of server `a` to `b`, with their range."""
        ratios = sorted(
            x.rps / y.rps for x, y in ((r[a], r[b]) for r in self.rounds) if x and y and y.rps
        )
        if not ratios:
            return "-"
        mid = f"{statistics.median(ratios):.3f}"
        return mid if len(ratios) == 1 else f"{mid} ({ratios[0]:.2f}–{ratios[-1]:.2f})"


async def measure(
    wrk_bin: str,
    nginx_bin: str | None,
    connections: Sequence[int],
    seconds: float,
    vod_seconds: float,
    notes: list[str],
    *,
    pinned: bool = False,
    rounds: int = 1,
) -> list[Result]:
    results: list[Result] = []
    async with (
        fresh_database() as database,
        IcecastSource(title="Bench - Origin") as source,
        run_node(database, **NODE_SETTINGS) as node,
    ):
        targets = only(await targets_of(node, source, seconds, vod_seconds, notes))
        async with contextlib.AsyncExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-origin-")))
            script = tmp / "crowd.lua"
            script.write_text(CROWD_LUA)
            bodies = {target.url: target.body for target in targets}
            floor = await stack.enter_async_context(run_floor(bodies))
            our_headers = {target.url: target.headers for target in targets}
            dressed = await stack.enter_async_context(run_floor(bodies, our_headers))
            nginx = None
            if nginx_bin is not None:
                nginx = await stack.enter_async_context(run_nginx(nginx_bin, bodies))
            client_cpus = None
            if pinned:
                for process in (node.process, floor.process, dressed.process):
                    pin(process.pid, SERVER_CPUS)
                if nginx is not None:
                    pin(nginx.process.pid, SERVER_CPUS)
                client_cpus = CLIENT_CPUS
            for target in targets:
                for count in connections:
                    load = functools.partial(
                        wrk,
                        wrk_bin,
                        script,
                        connections=count,
                        seconds=target.seconds,
                        tokens=target.tokens,
                        cpus=client_cpus,
                    )
                    done: list[Round] = []
                    for _ in range(rounds):
                        url = await target.ours()
                        ours = await load(url, server_cpu=lambda: cpu_seconds(node.pid))
                        bare = await load(floor.url(target.url), server_cpu=floor.cpu)
                        same = await load(dressed.url(target.url), server_cpu=dressed.cpu)
                        theirs = None
                        if nginx is not None:
                            theirs = await load(nginx.url(target.url), server_cpu=nginx.cpu)
                        done.append((ours, bare, same, theirs))
                    results.append(Result(target, count, tuple(done)))
            if node.process.poll() is not None:
                raise RuntimeError(f"our node died:\n{tail(node.log)}")
    return results


def _each(r: Result, figure: Callable[[Load], str]) -> tuple[str, str, str, str]:
    """`figure` of the median rounds of ours, the floor, the floor with our headers, nginx."""
    ours, floor, dressed, nginx = (r.median(server) for server in range(4))
    return tuple(figure(x) if x else "-" for x in (ours, floor, dressed, nginx))


def rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for r in results:
        ours = r.median(0)
        assert ours is not None
        out += [
            (f"{r.target.name}, c{r.connections}: req/s", *_each(r, lambda x: f"{x.rps:,.0f}")),
            ("  ours / floor", r.ratio(0, 1), f"target >= {RATIO_TARGET:.2f}", "", ""),
            ("  ours / floor with our headers", r.ratio(0, 2), "", "", ""),
            ("  floor with our headers / floor", "", "", r.ratio(2, 1), ""),
            ("  ours / nginx", r.ratio(0, 3), "", "", ""),
            ("  p99 latency", *_each(r, lambda x: f"{1000 * x.p99:.1f} ms")),
            ("  server CPU per request", *_each(r, lambda x: x.per_request(x.server_cpu))),
            ("  postgres CPU per request", ours.per_request(ours.db_cpu), "-", "-", "-"),
            ("  machine busy (2 cores)", *_each(r, lambda x: f"{100 * x.busy:.0f} %")),
        ]
        bad = [sum(x.bad for x in (each[i] for each in r.rounds) if x) for i in range(4)]
        if any(bad):
            out.append(("  non-2xx responses + socket errors", *map(str, bad)))
    return out


#: Connections of the load under callgrind (the servers run several times slower there).
CALLGRIND_CONNECTIONS = 10


async def count_instructions(
    wrk_bin: str, seconds: float, notes: list[str]
) -> list[tuple[str, ...]]:
    """`BENCH_CALLGRIND=1`: each URL loaded for `seconds` on our node, the floor and the
    floor with our headers, each running under callgrind; instructions per request (ours
    less those of an idle window of the same length before the load: the relay and the
    timers)."""
    out: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="bench-origin-callgrind-") as tmp:
        dumps = Path(tmp)
        grind = callgrind.wrapper(dumps)
        async with (
            fresh_database() as database,
            IcecastSource(title="Bench - Origin") as source,
            run_node(database, wrapper=grind, **NODE_SETTINGS) as node,
            contextlib.AsyncExitStack() as stack,
        ):
            targets = only(await targets_of(node, source, seconds, seconds, notes))
            script = dumps / "crowd.lua"
            script.write_text(CROWD_LUA)
            bodies = {target.url: target.body for target in targets}
            floor = await stack.enter_async_context(run_floor(bodies, wrapper=grind))
            our_headers = {target.url: target.headers for target in targets}
            dressed = await stack.enter_async_context(run_floor(bodies, our_headers, wrapper=grind))
            idle_rates = []
            for target in targets:
                on = functools.partial(_load_of, wrk_bin, script, target.tokens, seconds=seconds)
                idle, _ = await callgrind.count(node.pid, dumps, lambda: asyncio.sleep(seconds))
                idle_rates.append(idle / seconds)
                busy, ours = await callgrind.count(node.pid, dumps, on(await target.ours()))
                bare, base = await callgrind.count(
                    floor.process.pid, dumps, on(floor.url(target.url))
                )
                same, with_headers = await callgrind.count(
                    dressed.process.pid, dumps, on(dressed.url(target.url))
                )
                per = [
                    (busy - idle) / max(1, ours.requests),
                    bare / max(1, base.requests),
                    same / max(1, with_headers.requests),
                ]
                out += [
                    (
                        f"{target.name}: instructions per request",
                        *(f"{n / 1000:,.1f} k" for n in per),
                    ),
                    (
                        "  floor / ours",
                        f"{per[1] / per[0]:.3f}",
                        f"target >= {RATIO_TARGET:.2f}",
                        "",
                    ),
                    ("  floor with our headers / ours", f"{per[2] / per[0]:.3f}", "", ""),
                    ("  requests counted", *(str(x.requests) for x in (ours, base, with_headers))),
                ]
            if node.process.poll() is not None:
                raise RuntimeError(f"our node died:\n{tail(node.log)}")
    notes += [
        f"valgrind --tool=callgrind (user-space instructions, {CALLGRIND_CONNECTIONS} connections,"
        f" {seconds:g} s per URL and server); ours less its idle background, measured for as"
        f" long just before each load ({sum(idle_rates) / max(1, len(idle_rates)) / 1e6:.1f} M"
        " instructions/s: the relay, segmenting, timers)",
        "a ratio of instructions is steadier than one of requests per second (the same for"
        " the same code) but leaves out cache misses and system calls: ratios of req/s are"
        " lower (run without BENCH_CALLGRIND for them)",
    ]
    return out


def _load_of(
    wrk_bin: str, script: Path, tokens: list[str], url: str, *, seconds: float
) -> Callable[[], Awaitable[Load]]:
    """The callgrind mode's load of `url` (no CPU time read: instructions are counted)."""
    return functools.partial(
        wrk,
        wrk_bin,
        script,
        url,
        connections=CALLGRIND_CONNECTIONS,
        seconds=seconds,
        tokens=tokens,
        server_cpu=lambda: 0.0,
    )


async def run() -> str:
    seconds = env_float("BENCH_SECONDS", 6.0)
    vod_seconds = env_float("BENCH_VOD_SECONDS", max(1.0, seconds / 2))
    connections = env_ints("BENCH_CONNECTIONS", [50])
    wrk_bin, nginx_bin, notes = ensure_tools()
    if wrk_bin is None:
        return print_table(
            "HLS origin", [], ["wrk is not installed (apt-get install wrk): nothing measured"]
        )
    if os.environ.get("BENCH_CALLGRIND") == "1":
        if not callgrind.available():
            notes.append("valgrind is not installed (apt-get install valgrind): nothing counted")
            return print_table("HLS origin: instructions per request", [], notes)
        return print_table(
            "HLS origin: instructions per request (callgrind), ours vs the aiohttp floor",
            await count_instructions(wrk_bin, env_float("BENCH_SECONDS", 10.0), notes),
            notes,
            columns=("metric", "ours", "floor (bare aiohttp)", "floor + our headers"),
        )
    if nginx_bin is None:
        notes.append("nginx is not installed (apt-get install nginx-light): no reference")
    pinned = os.environ.get("BENCH_PIN", "1") == "1" and len(os.sched_getaffinity(0)) >= 2
    rounds = max(1, env_int("BENCH_ROUNDS", 3))
    results = await measure(
        wrk_bin, nginx_bin, connections, seconds, vod_seconds, notes, pinned=pinned, rounds=rounds
    )
    notes += [
        f"wrk -t1 -c{'/'.join(map(str, connections))} --latency, {seconds:g} s per live URL,"
        f" {vod_seconds:g} s per upload/playlist URL; {rounds} rounds per URL of ours, the"
        " floor, the floor with our headers and nginx in turn on the same path and bytes;"
        " each column is the server's median round, each ratio the median of the rounds'"
        " ratios (their range in brackets)",
        "floor + our headers: the floor answering with the response headers our node sent"
        " for the URL (Cache-Control, ETag, Vary, Accept-Ranges, Server, the security"
        " headers, X-Request-ID): what aiohttp itself costs for the response the contract"
        " asks for, without any of our code",
        (
            "pinned: the server measured on core 0, wrk on core 1, PostgreSQL anywhere"
            if pinned
            else f"nothing pinned: wrk, the server and PostgreSQL share the {os.cpu_count()} cores"
        )
        + " (wrk alone takes most of one); 'machine busy' is the whole machine during the run",
        "nginx: worker_processes 1, access_log off, sendfile on, keepalive_requests 1e8"
        " (its default 1000 would make wrk reconnect); floor: one process, web.run_app, no"
        " access log; ours: one process, "
        + ", ".join(f"{k}={v}" for k, v in NODE_SETTINGS.items()),
        "every request has its own User-Agent; upload GETs carry a Bearer token taken in turn"
        f" from {env_int('BENCH_TOKENS', 16)} sessions of the DJ; live stream and playlist are"
        " public",
    ]
    return print_table(
        "HLS origin: GETs from our node vs the aiohttp floor vs nginx (1 worker), same bytes",
        rows(results),
        notes,
        columns=("metric", "ours", "floor (bare aiohttp)", "floor + our headers", "nginx"),
    )


def test_origin() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    asyncio.run(run())
