"""MP3 fan-out: N listeners of one 128 kbit/s stream on our node vs Icecast 2.4.

Our node runs as `python -m mediaserver serve` in its own process (fresh database, rate
limits off) relaying a fake Icecast source that plays real MP3 in real time; Icecast, when
installed, runs next to it fed with the same frames at the same pace by a PUT source
client. The same load client (worker processes of byte-counting asyncio protocols) then
holds 1 000, 5 000 and 10 000 listeners on each in turn, and over a window at each level
we read the server's CPU (utime + stime of all its threads) and RSS from /proc, and the
bytes every listener received: below 90 % of 128 kbit/s over the window counts as behind.

    .venv/bin/python -m tests.bench.bench_fanout          # or: make bench
    BENCH_LISTENERS=1000,3000 BENCH_SECONDS=10 .venv/bin/python -m tests.bench.bench_fanout

Settings: BENCH_LISTENERS (levels, default 1000,5000,10000), BENCH_SECONDS (window per level,
default 20), BENCH_CLIENT_PROCS (load-client processes, default 2), BENCH_RCVLOWAT (bytes a
listener socket holds before waking the client, default 8192; 0 = every segment),
BENCH_ICECAST=0 (skip the reference). With the defaults a run takes ~5-6 minutes, over
half of it Icecast accepting listeners (it takes at most ~250/s, fewer once loaded).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tests.audio import make_mp3
from tests.bench.harness import (
    BYTES_PER_SECOND,
    LoadClient,
    Report,
    Target,
    cpu_seconds,
    cpu_times,
    env_float,
    env_int,
    env_ints,
    fresh_database,
    machine_busy,
    percentile,
    print_table,
    raise_nofile,
    register_stream,
    rss_bytes,
    run_node,
    scrape_metrics,
)
from tests.bench.icecast import MOUNT, IcecastFeeder, icecast_binary, run_icecast
from tests.livefeed import Mp3Clip
from tests.sources import CLIP_SECONDS, IcecastSource

ICECAST_CPU_MS = 0.063  # DESIGN.md: Icecast 2.4 measured on this machine, CPU-ms/listener-s
SETTLE_SECONDS = 2.0  # after connecting, before the window (bursts drain)
IDLE_SECONDS = 3.0  # the server with its source and no listener
BEHIND = 0.9  # a listener that got less than this share of the audio is behind
CLIENT_BOUND = 0.9  # a load-client process this busy (share of a core) is the limit
MACHINE_BOUND = 0.95  # both cores this busy: server and client compete for CPU

Probe = Callable[[], Awaitable[tuple[float | None, float | None]]]


@dataclass
class Run:
    """One server's figures: idle, then one `Level` per audience size."""

    idle: float  # share of a core with the source playing and no listener
    levels: list[Level]


@dataclass
class Level:
    """What one server did with `wanted` listeners over one window."""

    wanted: int
    connected: int
    failed: int
    connect_seconds: float
    new: int  # listeners connected for this level
    window: float
    report: Report
    server_cpu: tuple[float, float]  # user, system seconds over the window
    rss: int
    baseline_rss: int
    client_cpu: list[float]  # share of a core, per load-client process
    machine: float  # share of all cores
    others: float  # CPU of everything else on the machine, in cores
    listeners: float | None  # the server's own count
    dropped: float | None

    @property
    def open(self) -> int:
        return self.connected - self.report.closed

    @property
    def expected(self) -> float:
        return BYTES_PER_SECOND * self.window

    @property
    def behind(self) -> int:
        return sum(delta < BEHIND * self.expected for delta in self.report.deltas)

    def delivered(self, q: float) -> float:
        """Percentile `q` of the bytes received, as % of what real time would have given."""
        deltas = self.report.deltas or [0]
        return 100 * percentile(deltas, q) / self.expected

    @property
    def core_share(self) -> float:
        return sum(self.server_cpu) / self.window

    @property
    def cpu_ms_per_listener_second(self) -> float:
        return 1000 * sum(self.server_cpu) / max(1, self.open) / self.window

    @property
    def cpu_ms_per_audio_second(self) -> float:
        """Server CPU per second of audio actually delivered to a listener: the same as
        per listener-second when nobody is behind, and fair when some are."""
        delivered = sum(self.report.deltas) / BYTES_PER_SECOND
        return 1000 * sum(self.server_cpu) / max(1e-9, delivered)

    @property
    def client_bound(self) -> bool:
        return max(self.client_cpu, default=0.0) >= CLIENT_BOUND

    @property
    def machine_bound(self) -> bool:
        return self.machine >= MACHINE_BOUND


async def measure(
    pid: int,
    client: LoadClient,
    target: Target,
    levels: Sequence[int],
    window: float,
    probe: Probe,
) -> Run:
    """Grow the audience level by level on one server; measure a window at each."""
    baseline, cpu_idle = rss_bytes(pid), cpu_seconds(pid)
    await asyncio.sleep(IDLE_SECONDS)
    idle = (cpu_seconds(pid) - cpu_idle) / IDLE_SECONDS
    results: list[Level] = []
    connected = failed = 0
    for wanted in levels:
        started = time.monotonic()
        ok = bad = 0
        if wanted > connected:
            ok, bad = await client.connect(target, wanted - connected)
            connected, failed = connected + ok, failed + bad
        connect_seconds = time.monotonic() - started
        await asyncio.sleep(SETTLE_SECONDS)
        workers = client.pids
        cpu0, machine0, own0 = cpu_times(pid), machine_busy(), cpu_seconds(os.getpid())
        clients0 = [cpu_seconds(worker) for worker in workers]
        t0 = time.monotonic()
        await client.mark()
        await asyncio.sleep(window)
        report = await client.report()
        elapsed = time.monotonic() - t0
        cpu1, machine1, own1 = cpu_times(pid), machine_busy(), cpu_seconds(os.getpid())
        clients1 = [cpu_seconds(worker) for worker in workers]
        listeners, dropped = await probe()
        server = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1])
        busy = machine1[0] - machine0[0]
        accounted = sum(server) + own1 - own0 + sum(clients1) - sum(clients0)
        results.append(
            Level(
                wanted=wanted,
                connected=connected,
                failed=bad,
                connect_seconds=connect_seconds,
                new=ok,
                window=elapsed,
                report=report,
                server_cpu=server,
                rss=rss_bytes(pid),
                baseline_rss=baseline,
                client_cpu=[(b - a) / elapsed for a, b in zip(clients0, clients1, strict=True)],
                machine=busy / (machine1[1] - machine0[1]),
                others=(busy - accounted) / elapsed,
                listeners=listeners,
                dropped=dropped,
            )
        )
        print(_progress("ours" if dropped is not None else "icecast", results[-1]), flush=True)
    return Run(idle, results)


def _progress(name: str, level: Level) -> str:
    return (
        f"[{name}] {level.open}/{level.wanted} listeners, {level.behind} behind, "
        f"{level.cpu_ms_per_listener_second:.4f} CPU-ms/listener-s, "
        f"server {100 * level.core_share:.0f} % of a core, "
        f"clients {', '.join(f'{100 * c:.0f} %' for c in level.client_cpu)}, "
        f"others {100 * level.others:.0f} % of a core "
        f"(connected {level.new} in {level.connect_seconds:.1f} s)"
    )


async def measure_ours(client: LoadClient, levels: Sequence[int], window: float) -> Run:
    async with (
        fresh_database() as database_url,
        IcecastSource(title="Bench - Fan-out") as source,
        run_node(database_url) as node,
    ):
        stream_id = await register_stream(
            node.base_url, source.url, source.mount, source.admin_password
        )
        target = Target(node.port, f"/v1/streams/{stream_id}/live.mp3")

        async def probe() -> tuple[float | None, float | None]:
            metrics = await scrape_metrics(node.base_url)
            listeners = metrics.get("mediaserver_listeners")
            return listeners, metrics.get("mediaserver_listeners_dropped_total", 0.0)

        try:
            return await measure(node.pid, client, target, levels, window, probe)
        finally:
            await client.close_all()


async def measure_icecast(
    binary: str, client: LoadClient, levels: Sequence[int], window: float
) -> Run:
    clip = Mp3Clip.parse(make_mp3(CLIP_SECONDS))
    async with run_icecast(binary, max(levels)) as icecast:
        async with IcecastFeeder(clip, icecast.port, icecast.password):
            await asyncio.sleep(1.0)  # the mount exists once the first data arrived
            # Icecast 2.4 listens with a backlog of 5 and accepts one connection per turn of
            # its accept loop: faster than ~300/s, SYNs are dropped and retried 1 s later.
            target = Target(icecast.port, MOUNT, http11=False, rate=125)

            async def probe() -> tuple[float | None, float | None]:
                return await icecast.listeners(), None

            try:
                return await measure(icecast.pid, client, target, levels, window, probe)
            finally:
                await client.close_all()


Cell = Callable[[Level], str]


Row = tuple[str, str, str, str]


def _rows(
    name: str, ours: list[Level], ref: list[Level] | None, cell: Cell, target: str
) -> list[Row]:
    rows: list[Row] = []
    for index, level in enumerate(ours):
        other = cell(ref[index]) if ref and index < len(ref) else "-"
        rows.append((f"N={level.wanted:>6}  {name}", cell(level), other, target))
    return rows


def _rss(level: Level) -> str:
    per_listener = (level.rss - level.baseline_rss) / 1024 / max(1, level.open)
    return f"{level.rss / 2**20:.0f} ({per_listener:.1f})"


def _connect(level: Level) -> str:
    return f"{level.new} in {level.connect_seconds:.1f} s"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


CELLS: tuple[tuple[str, Cell, str], ...] = (
    ("listeners connected (failed)", lambda lv: f"{lv.open} ({lv.failed})", "N (0)"),
    ("behind (< 90 % of 128 kbit/s)", lambda lv: f"{lv.behind}", "0"),
    (
        "delivered % of real time, min/median",
        lambda lv: f"{lv.delivered(0):.0f}/{lv.delivered(50):.0f}",
        "100",
    ),
    (
        "CPU-ms per listener-second",
        lambda lv: f"{lv.cpu_ms_per_listener_second:.4f}",
        f"<= Icecast (~{ICECAST_CPU_MS})",
    ),
    (
        "CPU-ms per second of audio delivered",
        lambda lv: f"{lv.cpu_ms_per_audio_second:.4f}",
        "<= Icecast",
    ),
    (
        "server CPU % of a core (user+sys)",
        lambda lv: (
            f"{100 * lv.core_share:.0f} ({100 * lv.server_cpu[0] / lv.window:.0f}"
            f"+{100 * lv.server_cpu[1] / lv.window:.0f})"
        ),
        "",
    ),
    ("RSS MiB (KiB per listener)", _rss, ""),
    (
        "server's count: listeners/dropped",
        lambda lv: f"{_count(lv.listeners)}/{_count(lv.dropped)}",
        "N/0",
    ),
    ("connect: new listeners in (while streaming)", _connect, ""),
    (
        "load client CPU % core (busiest)",
        lambda lv: f"{100 * max(lv.client_cpu):.0f}",
        f"< {100 * CLIENT_BOUND:.0f}",
    ),
    ("other processes, % of a core", lambda lv: f"{100 * max(0.0, lv.others):.0f}", "~0"),
)


def table(mine: Run, theirs: Run | None, icecast_note: str) -> str:
    ours, ref = mine.levels, theirs.levels if theirs else None
    idle = f"{100 * theirs.idle:.1f}" if theirs else "-"
    rows: list[Row] = [
        ("idle: source playing, no listener, % core", f"{100 * mine.idle:.1f}", idle, "")
    ]
    rows += [row for name, cell, target in CELLS for row in _rows(name, ours, ref, cell, target)]
    for mine_level, their_level in zip(ours, ref or [], strict=False):
        ratio = mine_level.cpu_ms_per_audio_second / max(1e-9, their_level.cpu_ms_per_audio_second)
        name = f"N={mine_level.wanted:>6}  CPU ours / Icecast (per audio-s delivered)"
        rows.append((name, f"{ratio:.2f}", "1.00", "<= 1.00"))
    notes = [icecast_note, *_limits("ours", ours), *_limits("Icecast", ref or [])]
    notes.append(
        f"window {ours[0].window:.0f} s per level; ours: HTTP/1.1 chunked, Icecast: HTTP/1.0; "
        "the load client wakes per BENCH_RCVLOWAT bytes (SO_RCVLOWAT), kernel-held bytes "
        "counted (FIONREAD); 'other processes' = machine CPU not used by server, client, "
        "or this process (anything else running on the box inflates every figure)"
    )
    return print_table("MP3 fan-out: ours vs Icecast 2.4 (one 128 kbit/s stream)", rows, notes)


def _limits(name: str, levels: Sequence[Level]) -> list[str]:
    notes = []
    for level in levels:
        if level.failed:
            notes.append(f"{name} N={level.wanted}: {level.failed} connections failed")
        if level.client_bound:
            notes.append(
                f"{name} N={level.wanted}: the LOAD CLIENT is the bottleneck (a client "
                f"process at {100 * max(level.client_cpu):.0f} % of a core); behind counts "
                "at this level say more about the client than the server"
            )
        elif level.machine_bound:
            notes.append(
                f"{name} N={level.wanted}: the MACHINE is saturated ({100 * level.machine:.0f} "
                f"% of both cores; other processes {100 * level.others:.0f} % of a core): "
                "server and load client compete for CPU"
            )
    return notes


async def run() -> str:
    raise_nofile()
    levels = sorted(env_ints("BENCH_LISTENERS", (1000, 5000, 10000)))
    window = env_float("BENCH_SECONDS", 20.0)
    processes = env_int("BENCH_CLIENT_PROCS", 2)
    client = LoadClient(processes, env_int("BENCH_RCVLOWAT", 8192))
    try:
        ours = await measure_ours(client, levels, window)
        binary = icecast_binary() if env_int("BENCH_ICECAST", 1) else None
        if binary is None:
            ref, note = None, "no reference run: Icecast not installed (apt-get install icecast2)"
            note += " or BENCH_ICECAST=0"
        else:
            ref = await measure_icecast(binary, client, levels, window)
            note = f"reference: {binary} (Icecast 2.4) on the same machine, same load client"
    finally:
        await client.shutdown()
    return table(ours, ref, note)


def test_fanout() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    asyncio.run(run())
