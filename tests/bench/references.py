"""What the origin benchmark (`tests/bench/bench_origin.py`) loads its URLs with and
compares ours to: wrk driven by a crowd script (every request its own `User-Agent`, Bearer
tokens in turn), nginx and the aiohttp floor (`tests/bench/floor.py`) serving the same bytes
under the same paths, each in its own process, with its CPU time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests import nginx
from tests.bench.harness import (
    ROOT,
    cpu_seconds,
    free_port,
    machine_busy,
    postgres_cpu,
    stop_process,
    wait_for_port,
)

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}
#: Every request its own User-Agent (a crowd of players) and, when tokens are given as the
#: script's arguments, the next token in turn.
CROWD_LUA = """\
local counter = 0
local tokens = {}
function init(args)
  for i, token in ipairs(args) do tokens[i] = token end
end
function request()
  counter = counter + 1
  local headers = {}
  headers["User-Agent"] = string.format(
    "Player/%d.%d (Linux; bench crowd) client-%d", counter % 97, counter % 13, counter)
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1]
  end
  return wrk.format("GET", nil, headers)
end
"""

# -- tools ---------------------------------------------------------------------------------


def ensure_tools() -> tuple[str | None, str | None, list[str]]:
    """(wrk, nginx, notes): installed with apt-get when absent and we are root."""
    notes: list[str] = []
    wrk = shutil.which("wrk")
    if wrk is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for args in (["update", "-q"], ["install", "-y", "-q", "wrk"]):
            subprocess.run(["apt-get", *args], env=env, capture_output=True, check=False)
        wrk = shutil.which("wrk")
        notes.append("installed wrk with apt-get")
    binary = nginx.find_nginx()
    if binary is None:
        binary = nginx.install_nginx()
        notes.append("installed nginx with apt-get")
    return wrk, binary, notes


# -- nginx ---------------------------------------------------------------------------------

#: The body of nginx's `http {}` block (`tests.nginx.MAIN_CONF` around it).
NGINX_HTTP = """\
access_log off;
sendfile on;
tcp_nopush on;
keepalive_requests 100000000;
keepalive_timeout 65;
types {{
    application/vnd.apple.mpegurl m3u8;
    video/mp2t ts;
}}
default_type application/octet-stream;
server {{
    listen 127.0.0.1:{port};
    root {root};
}}
"""


@dataclass(frozen=True)
class Reference:
    """A reference server (nginx, the floor) serving bytes under our paths."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, ours: str) -> str:
        return f"{self.base_url}{urlsplit(ours).path}"

    def cpu(self) -> float:
        """CPU seconds of the process and its children (nginx's worker)."""
        total = cpu_seconds(self.process.pid)
        for pid in children(self.process.pid):
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total


def write_bodies(root: Path, bodies: Mapping[str, bytes]) -> dict[str, list[str]]:
    """Each body as a file under its URL's path; {path: [file, content type]}."""
    manifest = {}
    for url, body in bodies.items():
        path = urlsplit(url).path
        file = root / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(body)
        manifest[path] = [str(file), _CONTENT_TYPES[Path(path).suffix]]
    return manifest


@contextlib.asynccontextmanager
async def run_nginx(binary: str, bodies: Mapping[str, bytes]) -> AsyncIterator[Reference]:
    with tempfile.TemporaryDirectory(prefix="bench-origin-nginx-") as tmp:
        prefix = Path(tmp)
        write_bodies(prefix / "www", bodies)
        port = free_port()
        http = NGINX_HTTP.format(port=port, root=prefix / "www")
        async with nginx.run_nginx(binary, prefix, http, port) as process:
            yield Reference(process, port)


@contextlib.asynccontextmanager
async def run_floor(
    bodies: Mapping[str, bytes],
    headers: Mapping[str, Mapping[str, str]] | None = None,
    *,
    wrapper: Sequence[str] = (),
) -> AsyncIterator[Reference]:
    """`tests/bench/floor.py` in its own process, serving `bodies` (our URL → bytes), each
    with the response `headers` given for its URL (none: only aiohttp's own); `wrapper`: a
    command it runs under (`tests.bench.callgrind`)."""
    with tempfile.TemporaryDirectory(prefix="bench-origin-floor-") as tmp:
        root = Path(tmp)
        manifest = root / "manifest.json"
        entries: dict[str, list[Any]] = dict(write_bodies(root / "www", bodies))
        for url, extra in (headers or {}).items():
            entries[urlsplit(url).path].append(dict(extra))
        manifest.write_text(json.dumps(entries))
        port = free_port()
        log = root / "floor.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "tests.bench.floor", str(port), str(manifest)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            await wait_for_port(port, process, log, 300 if wrapper else 60)
            yield Reference(process, port)
        finally:
            await stop_process(process, timeout=10)


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of `pid` and of its children onto `cpus` (threads made later inherit
    it from the thread that makes them)."""
    for process in (pid, *children(pid)):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{process}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), cpus)


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


# -- wrk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    rps: float
    p99: float  # seconds
    requests: int
    bad: int  # non-2xx/3xx responses + socket errors
    server_cpu: float  # seconds, over the run
    db_cpu: float | None
    busy: float  # share of the whole machine, 0..1

    def per_request(self, cpu: float | None) -> str:
        if cpu is None or not self.requests:
            return "-"
        return f"{1e6 * cpu / self.requests:.0f} us"


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([a-z]+)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(out: str) -> tuple[float, float, int, int]:
    """(req/s, p99 seconds, requests, bad responses + socket errors) from wrk's output."""
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = _seconds(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = 0
    if found := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        bad += int(found.group(1))
    if found := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        bad += sum(int(n) for n in found.groups())
    return rps, p99, requests, bad


async def wrk(
    binary: str,
    script: Path,
    url: str,
    connections: int,
    seconds: float,
    tokens: Sequence[str],
    server_cpu: Callable[[], float],
    cpus: set[int] | None = None,
) -> Load:
    """`url` under load from a crowd (`CROWD_LUA`), `tokens` taken in turn; `cpus`: where
    wrk may run (None: anywhere)."""
    args = [binary, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    args += ["--timeout", "10s", "-s", str(script), url, "--", *tokens]
    cpu0, db0, (busy0, total0) = server_cpu(), postgres_cpu(), machine_busy()
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
    )
    out = (await process.communicate())[0].decode(errors="replace")
    cpu1, db1, (busy1, total1) = server_cpu(), postgres_cpu(), machine_busy()
    if process.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{out}")
    rps, p99, requests, bad = parse_wrk(out)
    db = db1 - db0 if db0 is not None and db1 is not None else None
    busy = (busy1 - busy0) / max(1e-9, total1 - total0)
    return Load(rps, p99, requests, bad, cpu1 - cpu0, db, busy)
