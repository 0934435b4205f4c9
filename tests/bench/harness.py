"""What the benchmarks share: a fresh database, our node as a separate process, a DJ and a
stream registered through the API, /proc figures of a process, the table they print, and
the load client: listener connections spread over worker processes, each an asyncio
`BufferedProtocol` that only counts the bytes it receives.

Settings come from the environment (all optional):
`BENCH_SECONDS` (measurement window), `BENCH_LISTENERS` ("1000,5000,10000"),
`BENCH_CLIENT_PROCS`, `BENCH_RCVLOWAT`, `BENCH_DATABASE_URL` (else `TEST_DATABASE_URL`,
else the local server at 127.0.0.1:5432).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import tempfile
import termios
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[2]
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
BYTES_PER_SECOND = 128_000 // 8  # the sources play 128 kbit/s CBR
PASSWORD = "Bench-Passw0rd!"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_NOFILE = 1 << 17


# -- settings ------------------------------------------------------------------------------


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def env_int(name: str, default: int) -> int:
    return int(env_float(name, default))


def env_ints(name: str, default: Sequence[int]) -> list[int]:
    value = os.environ.get(name, "").strip()
    return [int(part) for part in value.split(",") if part.strip()] if value else list(default)


# -- processes -----------------------------------------------------------------------------


def raise_nofile() -> int:
    """Raise RLIMIT_NOFILE as far as allowed (root: past the hard limit); the new soft limit.
    Used in every benchmark process, and as `preexec_fn` of the servers it starts."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limits in ((_NOFILE, max(hard, _NOFILE)), (hard, hard)):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            break
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of every thread of `pid` so far (proc(5): fields 14, 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / _CLK_TCK, int(fields[12]) / _CLK_TCK


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def postgres_cpu() -> float | None:
    """CPU seconds of every local `postgres` process so far (None: no local server)."""
    total, found = 0.0, False
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(entry.name))
                    found = True
    return total if found else None


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / _CLK_TCK, total / _CLK_TCK


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: Path, seconds: float = 60
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} within {seconds:g} s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def stop_process(process: subprocess.Popen[bytes], timeout: float = 40) -> None:
    if process.poll() is None:
        process.terminate()
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    if process.poll() is None:
        process.kill()
        process.wait()


# -- database ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """An empty database on the local PostgreSQL server, dropped afterwards."""
    server = (
        os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("TEST_DATABASE_URL")
        or LOCAL_POSTGRES
    )
    name = f"mediaserver_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# -- our node ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def run_node(
    database_url: str, *, wrapper: Sequence[str] = (), **settings: str
) -> AsyncIterator[Node]:
    """`python -m mediaserver serve` in its own process, on a free loopback port, with rate
    limits off, until the block ends (SIGTERM, then SIGKILL after 40 s). `wrapper`: a
    command the node runs under (`valgrind …`: then it may take minutes to start)."""
    with tempfile.TemporaryDirectory(prefix="mediaserver-bench-") as tmp:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "MEDIASERVER_DATA_DIR": f"{tmp}/data",
            "RATE_LIMIT_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            "PASSWORD_HASH_PROFILE": "fast",
            "ALLOW_PRIVATE_MEDIA_URLS": "true",  # the bench's sources listen on loopback
            **settings,
        }
        for name in ("REDIS_URL", "MEDIASERVER_PUBLIC_URL", "MEDIASERVER_PORT"):
            env.pop(name, None)
        log = Path(tmp) / "node.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "mediaserver", "serve", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=raise_nofile,
            )
        node = Node(process, port, log)
        try:
            await wait_for_port(port, process, log, 300 if wrapper else 60)
            await wait_healthy(node)
            yield node
        finally:
            await stop_process(process)


async def wait_healthy(node: Node) -> None:
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{node.base_url}/v1/health") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"node not healthy within 60 s:\n{tail(node.log)}")


async def register_stream(
    base_url: str, source_url: str, mount: str, stream_key: str, *, wait: float = 30
) -> str:
    """Register a DJ (`/v1/auth/register` + login), then the source as a public stream; wait
    until the relay is connected. The stream's id."""
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    async with aiohttp.ClientSession(base_url) as session:
        account = {"email": email, "password": PASSWORD, "name": "Bench DJ", "role": "dj"}
        async with session.post("/v1/auth/register", json=account) as response:
            assert response.status == 201, await response.text()
        login = {"email": email, "password": PASSWORD}
        async with session.post("/v1/auth/login", json=login) as response:
            assert response.status == 200, await response.text()
            token = (await response.json())["access_token"]
        stream = {
            "name": "Bench Radio",
            "shoutcast_url": source_url,
            "mount": mount,
            "stream_key": stream_key,
            "genre": "House",
            "visibility": "public",
        }
        headers = {"Authorization": f"Bearer {token}"}
        async with session.post("/v1/streams", json=stream, headers=headers) as response:
            assert response.status == 201, await response.text()
            stream_id = str((await response.json())["stream_id"])
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            async with session.get(f"/v1/streams/{stream_id}/status") as response:
                if response.status == 200 and (await response.json()).get("relay_connected"):
                    return stream_id
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the relay of stream {stream_id} did not connect within {wait} s")


async def scrape_metrics(base_url: str) -> dict[str, float]:
    """Prometheus text from `/metrics`, summed over labels: {sample name: value}."""
    totals: dict[str, float] = {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/metrics") as response,
    ):
        text = await response.text()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        name = name.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


# -- load client ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where listeners connect and the request they send."""

    port: int
    path: str
    http11: bool = True
    handshakes: int = 64  # TCP handshakes at once per worker (keep under the backlog)
    pending: int = 128  # connections waiting for their first bytes, per worker
    rate: float = 0.0  # new connections per second per worker; 0: as fast as they complete

    @property
    def request(self) -> bytes:
        version = "HTTP/1.1" if self.http11 else "HTTP/1.0"
        return (
            f"GET {self.path} {version}\r\nHost: 127.0.0.1:{self.port}\r\n"
            "User-Agent: mediaserver-bench/1\r\nAccept: */*\r\n\r\n"
        ).encode()


class _Counter(asyncio.BufferedProtocol):
    """A listener that counts bytes. Every protocol of a worker reads into one shared buffer;
    the only per-read work is `received += n`. SO_RCVLOWAT makes the kernel wake it up only
    once `lowat` bytes are waiting, so the client's cost does not depend on how finely the
    server slices its writes (a real player buffers too)."""

    __slots__ = ("_buffer", "_ready", "fd", "ok", "open", "received", "transport")

    def __init__(self, buffer: memoryview, ready: asyncio.Future[bool]) -> None:
        self._buffer = buffer
        self._ready = ready
        self.transport: asyncio.Transport | None = None
        self.fd = -1
        self.received = 0
        self.ok = False
        self.open = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.fd = transport.get_extra_info("socket").fileno()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        if not self.received:
            self.ok = bytes(self._buffer[:12]) in (b"HTTP/1.1 200", b"HTTP/1.0 200")
            if not self._ready.done():
                self._ready.set_result(self.ok)
        self.received += nbytes

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self._ready.done():
            self._ready.set_result(False)

    def total(self) -> int:
        """Bytes received, including those the kernel holds below the low-water mark."""
        if not self.open:
            return self.received
        pending = bytearray(4)
        with contextlib.suppress(OSError):
            fcntl.ioctl(self.fd, termios.FIONREAD, pending)
        return self.received + int.from_bytes(pending, sys.byteorder)


async def _connect(
    target: Target, count: int, lowat: int, buffer: memoryview, into: list[_Counter]
) -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    # Handshakes at once are kept under the server's accept backlog, and paced when the
    # server accepts slowly (a SYN dropped on a full backlog is retried only after 1 s);
    # connections waiting for their first bytes (Icecast adds listeners when its source
    # thread next wakes up) may be many more.
    handshakes, pending = asyncio.Semaphore(target.handshakes), asyncio.Semaphore(target.pending)
    request = target.request
    start = loop.time()

    async def one(index: int) -> bool:
        async with pending:
            if target.rate:
                await asyncio.sleep(start + index / target.rate - loop.time())
            ready: asyncio.Future[bool] = loop.create_future()
            sock = socket.socket()
            sock.setblocking(False)
            if lowat:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            try:
                async with handshakes:
                    address = ("127.0.0.1", target.port)
                    await asyncio.wait_for(loop.sock_connect(sock, address), 30)
                transport, protocol = await loop.create_connection(
                    lambda: _Counter(buffer, ready), sock=sock
                )
            except (OSError, TimeoutError):
                sock.close()
                return False
            transport.write(request)
            try:
                ok = await asyncio.wait_for(ready, 60)
            except TimeoutError:
                ok = False
            if ok:
                into.append(protocol)
            else:
                transport.abort()
            return ok

    results = await asyncio.gather(*(one(index) for index in range(count)))
    return sum(results), count - sum(results)


async def _worker(conn: Connection, lowat: int) -> None:
    loop = asyncio.get_running_loop()
    buffer = memoryview(bytearray(256 * 1024))
    counters: list[_Counter] = []
    marks: list[int] = []
    inbox: asyncio.Queue[tuple[str, tuple[object, ...]]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: inbox.put_nowait(conn.recv()))
    while True:
        command, args = await inbox.get()
        if command == "connect":
            target, count = args
            assert isinstance(target, Target) and isinstance(count, int)
            conn.send(await _connect(target, count, lowat, buffer, counters))
        elif command == "mark":
            marks = [counter.total() for counter in counters]
            conn.send(len(marks))
        elif command == "report":
            deltas = [c.total() - m for c, m in zip(counters, marks, strict=False)]
            conn.send((deltas, sum(not c.open for c in counters)))
        elif command == "close":
            for counter in counters:
                if counter.transport is not None:
                    counter.transport.abort()
            counters.clear()
            conn.send(True)
        else:
            conn.send(True)
            return


def _worker_main(conn: Connection, lowat: int) -> None:
    raise_nofile()
    asyncio.run(_worker(conn, lowat))


@dataclass
class Report:
    deltas: list[int]  # bytes each listener received between `mark` and `report`
    closed: int  # listeners whose connection had ended


class LoadClient:
    """Listener connections spread evenly over `processes` worker processes (spawned, so
    they share nothing with this one), driven through pipes from the event loop."""

    def __init__(self, processes: int, lowat: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._workers: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_worker_main, args=(child, lowat), daemon=True)
            process.start()
            child.close()
            self._workers.append((process, parent))

    @property
    def pids(self) -> list[int]:
        return [int(process.pid or 0) for process, _ in self._workers]

    async def _all(self, command: str, *args: object, split: int | None = None) -> list[object]:
        def call(conn: Connection, index: int) -> object:
            share = args
            if split is not None:  # spread `split` connections over the workers
                share = (
                    args[0],
                    split // len(self._workers) + (index < split % len(self._workers)),
                )
            conn.send((command, share))
            return conn.recv()

        return await asyncio.gather(
            *(asyncio.to_thread(call, conn, i) for i, (_, conn) in enumerate(self._workers))
        )

    async def connect(self, target: Target, count: int) -> tuple[int, int]:
        """Open `count` more listeners; (connected, failed)."""
        results = await self._all("connect", target, split=count)
        return sum(r[0] for r in results), sum(r[1] for r in results)  # type: ignore[index]

    async def mark(self) -> None:
        await self._all("mark")

    async def report(self) -> Report:
        results = await self._all("report")
        deltas = [d for r in results for d in r[0]]  # type: ignore[index]
        return Report(deltas, sum(r[1] for r in results))  # type: ignore[index,misc]

    async def close_all(self) -> None:
        await self._all("close")

    async def shutdown(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            await asyncio.wait_for(self._all("exit"), 10)
        for process, conn in self._workers:
            process.join(5)
            if process.is_alive():
                process.kill()
            conn.close()


# -- output --------------------------------------------------------------------------------


def print_table(
    title: str,
    rows: Sequence[Sequence[str]],
    notes: Sequence[str] = (),
    reference: str = "reference",
    columns: Sequence[str] | None = None,
) -> str:
    """One table, `metric | ours | <reference> | target` (or `columns`), plus notes;
    returned as well."""
    header = tuple(columns or ("metric", "ours", reference, "target"))
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    line = "-+-".join("-" * width for width in widths)
    out = [f"\n{title}", " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    for row in rows:
        cells = [str(row[0]).ljust(widths[0])] + [
            str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        out.append(" | ".join(cells))
    out.extend(f"  * {note}" for note in notes)
    text = "\n".join(out)
    print(text, flush=True)
    return text


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]
