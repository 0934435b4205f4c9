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

Each URL is loaded with `wrk -t1 -cN --latency` and a Lua script that gives every request
its own `User-Agent` and, where the route needs one, a Bearer token taken in turn from
several sessions of the DJ — a crowd of players, not one request repeated byte for byte.
Ours, the floor and nginx are measured one after the other on each URL. The table shows
req/s, the ratios, p99 latency, the server's CPU per request and, for ours, PostgreSQL's
(media GETs check access against rows the node keeps for 1 s, and buffer play counts, so it
stays near zero). Nothing is pinned to a CPU: wrk, the servers and PostgreSQL share this
machine's cores and other work moves all figures: compare the ratios of one run.

nginx and wrk are installed with apt-get when absent and we are root (`nginx-light wrk`,
else `nginx`); without nginx its column is empty.

    .venv/bin/python -m tests.bench.bench_origin        # or: make bench
    BENCH_SECONDS=20 BENCH_CONNECTIONS=50,200 .venv/bin/python -m tests.bench.bench_origin

`BENCH_SECONDS` (default 10): wrk duration for the live routes; `BENCH_VOD_SECONDS`
(default half of it): for the upload and playlist routes; `BENCH_CONNECTIONS` (default 50);
`BENCH_TOKENS` (default 16): DJ sessions whose tokens the upload GETs rotate through.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp

from tests.audio import make_mp3
from tests.bench.harness import (
    PASSWORD,
    ROOT,
    cpu_seconds,
    env_float,
    env_int,
    env_ints,
    free_port,
    fresh_database,
    machine_busy,
    postgres_cpu,
    print_table,
    register_stream,
    run_node,
    stop_process,
    tail,
    wait_for_port,
)
from tests.sources import IcecastSource

RATIO_TARGET = 0.75  # of the floor
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
MIN_SEGMENTS = 3
VOD_SECONDS = 30.0  # length of the uploaded MP3: three 10 s segments
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
_URI = re.compile(r"^(?!#)\S+$", re.MULTILINE)
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


# -- tools ---------------------------------------------------------------------------------


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def ensure_tools() -> tuple[str | None, str | None, list[str]]:
    """(wrk, nginx, notes): installed with apt-get when absent and we are root."""
    notes: list[str] = []
    wrk, nginx = _which("wrk"), _which("nginx")
    if (wrk and nginx) or os.geteuid() != 0 or not shutil.which("apt-get"):
        return wrk, nginx, notes
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> bool:
        done = subprocess.run(["apt-get", *args], env=env, capture_output=True, check=False)
        return done.returncode == 0

    apt("update", "-q")
    wanted = [name for name, path in (("wrk", wrk), ("nginx-light", nginx)) if not path]
    if not apt("install", "-y", "-q", *wanted) and "nginx-light" in wanted:
        apt("install", "-y", "-q", *[w if w != "nginx-light" else "nginx" for w in wanted])
    notes.append(f"installed with apt-get: {', '.join(wanted)}")
    return _which("wrk"), _which("nginx"), notes


# -- our node: what it serves --------------------------------------------------------------


async def dj_tokens(session: aiohttp.ClientSession, sessions: int) -> list[str]:
    """Access tokens of `sessions` logins of one new DJ (a DJ on several devices)."""
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    account = {"email": email, "password": PASSWORD, "name": "Bench DJ", "role": "dj"}
    async with session.post("/v1/auth/register", json=account) as response:
        assert response.status == 201, await response.text()
    login = {"email": email, "password": PASSWORD}
    tokens = []
    for _ in range(max(1, sessions)):
        async with session.post("/v1/auth/login", json=login) as response:
            assert response.status == 200, await response.text()
            tokens.append((await response.json())["access_token"])
    return tokens


async def fetch(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> bytes:
    async with session.get(url, headers=headers) as response:
        body = await response.read()
        assert response.status == 200, f"GET {url}: {response.status} {body[:200]!r}"
        return body


def first_uri(playlist: str, base: str) -> str:
    found = _URI.search(playlist)
    assert found, f"no segment URI in:\n{playlist}"
    return urljoin(base, found.group(0))


def last_uri(playlist: str, base: str) -> str:
    return urljoin(base, _URI.findall(playlist)[-1])


async def wait_live(session: aiohttp.ClientSession, url: str, segments: int) -> str:
    """The live playlist once it lists `segments` segments."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        async with session.get(url) as response:
            text = await response.text() if response.status == 200 else ""
        if len(_URI.findall(text)) >= segments:
            return text
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{url} did not list {segments} segments within 120 s")


@dataclass(frozen=True)
class Vod:
    tokens: list[str]
    manifest_url: str  # the upload's
    playlist_url: str  # the playlist's stream.m3u8 (public)


async def prepare_vod(base_url: str, sessions: int) -> Vod:
    """Upload a short MP3 as a DJ, wait until it is ready, make it a public playlist and
    wait until that is `hls_ready`."""
    async with aiohttp.ClientSession(base_url) as session:
        tokens = await dj_tokens(session, sessions)
        headers = {"Authorization": f"Bearer {tokens[0]}"}
        form = aiohttp.FormData()
        form.add_field("file", make_mp3(VOD_SECONDS), filename="bench.mp3")
        form.add_field("title", "Bench Track")
        async with session.post("/v1/uploads/audio", data=form, headers=headers) as response:
            assert response.status == 201, await response.text()
            upload_id = (await response.json())["upload_id"]
        body = await _poll(session, f"/v1/uploads/audio/{upload_id}", headers, "status")
        assert body["status"] == "ready", body
        playlist = {
            "title": "Bench Playlist",
            "tracks": [{"source_type": "upload", "upload_id": upload_id}],
            "visibility": "public",
        }
        async with session.post("/v1/playlists", json=playlist, headers=headers) as response:
            assert response.status == 201, await response.text()
            playlist_id = (await response.json())["playlist_id"]
        await _poll(session, f"/v1/playlists/{playlist_id}", headers, "hls_ready")
        return Vod(
            tokens,
            f"{base_url}/v1/uploads/audio/{upload_id}/hls/manifest.m3u8",
            f"{base_url}/v1/playlists/{playlist_id}/stream.m3u8",
        )


async def _poll(
    session: aiohttp.ClientSession, path: str, headers: dict[str, str], field: str
) -> dict[str, object]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        async with session.get(path, headers=headers) as response:
            body = await response.json()
        if body.get(field) not in ("processing", False, None):
            return dict(body)
        await asyncio.sleep(0.3)
    raise RuntimeError(f"{path}: {field} still {body.get(field)!r} after 90 s")


# -- nginx ---------------------------------------------------------------------------------

NGINX_CONF = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    keepalive_timeout 65;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
    }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/www;
    }}
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


def write_bodies(root: Path, targets: Sequence[Target]) -> dict[str, list[str]]:
    """Each target's bytes as a file under its URL path; {path: [file, content type]}."""
    manifest = {}
    for target in targets:
        path = urlsplit(target.url).path
        file = root / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(target.body)
        manifest[path] = [str(file), _CONTENT_TYPES[Path(path).suffix]]
    return manifest


@contextlib.asynccontextmanager
async def run_nginx(binary: str, targets: Sequence[Target]) -> AsyncIterator[Reference]:
    with tempfile.TemporaryDirectory(prefix="bench-origin-nginx-") as tmp:
        prefix = Path(tmp)
        (prefix / "tmp").mkdir()
        write_bodies(prefix / "www", targets)
        port = free_port()
        user = "user root;\n" if os.geteuid() == 0 else ""  # the temp dir is 0700
        conf = prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user=user, prefix=prefix, port=port))
        log = prefix / "error.log"
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-e", str(log), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            await wait_for_port(port, process, log)
            yield Reference(process, port)
        finally:
            await stop_process(process, timeout=10)


@contextlib.asynccontextmanager
async def run_floor(targets: Sequence[Target]) -> AsyncIterator[Reference]:
    """`tests/bench/floor.py` in its own process, serving the targets' bytes."""
    with tempfile.TemporaryDirectory(prefix="bench-origin-floor-") as tmp:
        root = Path(tmp)
        manifest = root / "manifest.json"
        manifest.write_text(json.dumps(write_bodies(root / "www", targets)))
        port = free_port()
        log = root / "floor.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.bench.floor", str(port), str(manifest)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            await wait_for_port(port, process, log)
            yield Reference(process, port)
        finally:
            await stop_process(process, timeout=10)


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
) -> Load:
    """`url` under load from a crowd (`CROWD_LUA`), `tokens` taken in turn."""
    args = [binary, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    args += ["--timeout", "10s", "-s", str(script), url, "--", *tokens]
    cpu0, db0, (busy0, total0) = server_cpu(), postgres_cpu(), machine_busy()
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out = (await process.communicate())[0].decode(errors="replace")
    cpu1, db1, (busy1, total1) = server_cpu(), postgres_cpu(), machine_busy()
    if process.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{out}")
    rps, p99, requests, bad = parse_wrk(out)
    db = db1 - db0 if db0 is not None and db1 is not None else None
    busy = (busy1 - busy0) / max(1e-9, total1 - total0)
    return Load(rps, p99, requests, bad, cpu1 - cpu0, db, busy)


# -- the benchmark -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    url: str  # ours
    body: bytes  # what the floor and nginx serve for it
    tokens: list[str]  # Bearer tokens the requests take in turn (none: anonymous)
    seconds: float


@dataclass(frozen=True)
class Result:
    target: Target
    connections: int
    ours: Load
    floor: Load
    nginx: Load | None


async def collect(
    base_url: str, stream_id: str, vod: Vod | None, seconds: float, vod_seconds: float
) -> list[Target]:
    """The URLs to load and the bytes nginx serves for each, fetched from our node."""
    async with aiohttp.ClientSession() as session:
        live_url = f"{base_url}/v1/streams/{stream_id}/live.m3u8"
        live = await wait_live(session, live_url, MIN_SEGMENTS)
        # The newest segment: it stays in the window longest (6 x 6 s, then retired).
        segment_url = last_uri(live, live_url)
        targets = [
            Target("live.m3u8", live_url, live.encode(), [], seconds),
            Target(
                "live segment (.ts)",
                segment_url,
                await fetch(session, segment_url),
                [],
                seconds,
            ),
        ]
        if vod is None:
            return targets
        t, h = vod.tokens, {"Authorization": f"Bearer {vod.tokens[0]}"}
        manifest = await fetch(session, vod.manifest_url, h)
        upload_segment = first_uri(manifest.decode(), vod.manifest_url)
        playlist = await fetch(session, vod.playlist_url)
        playlist_segment = first_uri(playlist.decode(), vod.playlist_url)
        targets += [
            Target("upload manifest.m3u8", vod.manifest_url, manifest, t, vod_seconds),
            Target(
                "upload segment (.ts)",
                upload_segment,
                await fetch(session, upload_segment, h),
                t,
                vod_seconds,
            ),
            Target("playlist stream.m3u8", vod.playlist_url, playlist, [], vod_seconds),
            Target(
                "playlist segment (.ts)",
                playlist_segment,
                await fetch(session, playlist_segment),
                [],
                vod_seconds,
            ),
        ]
    return targets


async def measure(
    wrk_bin: str,
    nginx_bin: str | None,
    connections: Sequence[int],
    seconds: float,
    vod_seconds: float,
    notes: list[str],
) -> list[Result]:
    results: list[Result] = []
    sessions = env_int("BENCH_TOKENS", 16)
    async with (
        fresh_database() as database,
        IcecastSource(title="Bench - Origin") as source,
        run_node(database, **NODE_SETTINGS) as node,
    ):
        vod_task = asyncio.create_task(prepare_vod(node.base_url, sessions))
        stream_id = await register_stream(
            node.base_url, source.url, source.mount, source.admin_password
        )
        vod: Vod | None = None
        try:
            vod = await vod_task
        except (AssertionError, RuntimeError, aiohttp.ClientError, KeyError) as exc:
            notes.append(f"upload/playlist routes skipped: could not prepare them ({exc!r})")
        targets = await collect(node.base_url, stream_id, vod, seconds, vod_seconds)
        sizes = ", ".join(f"{t.name} {len(t.body):,} B" for t in targets)
        notes.append(f"bodies: {sizes}")
        async with contextlib.AsyncExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-origin-")))
            script = tmp / "crowd.lua"
            script.write_text(CROWD_LUA)
            floor = await stack.enter_async_context(run_floor(targets))
            nginx = None
            if nginx_bin is not None:
                nginx = await stack.enter_async_context(run_nginx(nginx_bin, targets))
            for target in targets:
                for count in connections:
                    load = functools.partial(
                        wrk, wrk_bin, script, connections=count, seconds=target.seconds
                    )
                    ours = await load(
                        target.url, tokens=target.tokens, server_cpu=lambda: cpu_seconds(node.pid)
                    )
                    bare = await load(
                        floor.url(target.url), tokens=target.tokens, server_cpu=floor.cpu
                    )
                    theirs = None
                    if nginx is not None:
                        theirs = await load(
                            nginx.url(target.url), tokens=target.tokens, server_cpu=nginx.cpu
                        )
                    results.append(Result(target, count, ours, bare, theirs))
            if node.process.poll() is not None:
                raise RuntimeError(f"our node died:\n{tail(node.log)}")
    return results


def _three(r: Result, figure: Callable[[Load], str]) -> tuple[str, str, str]:
    """`figure` of ours, the floor and nginx."""
    return figure(r.ours), figure(r.floor), figure(r.nginx) if r.nginx else "-"


def rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for r in results:
        ours, floor, ref = r.ours, r.floor, r.nginx
        ratio = ours.rps / floor.rps if floor.rps else 0.0
        of_nginx = f"{ours.rps / ref.rps:.3f}" if ref and ref.rps else "-"
        out += [
            (f"{r.target.name}, c{r.connections}: req/s", *_three(r, lambda x: f"{x.rps:,.0f}")),
            ("  ours / floor", f"{ratio:.3f}", f"target >= {RATIO_TARGET:.2f}", ""),
            ("  ours / nginx", of_nginx, "", ""),
            ("  p99 latency", *_three(r, lambda x: f"{1000 * x.p99:.1f} ms")),
            ("  server CPU per request", *_three(r, lambda x: x.per_request(x.server_cpu))),
            ("  postgres CPU per request", ours.per_request(ours.db_cpu), "-", "-"),
            ("  machine busy (2 cores)", *_three(r, lambda x: f"{100 * x.busy:.0f} %")),
        ]
        if ours.bad or floor.bad or (ref and ref.bad):
            out.append(("  non-2xx responses + socket errors", *_three(r, lambda x: str(x.bad))))
    return out


async def run() -> str:
    seconds = env_float("BENCH_SECONDS", 10.0)
    vod_seconds = env_float("BENCH_VOD_SECONDS", max(1.0, seconds / 2))
    connections = env_ints("BENCH_CONNECTIONS", [50])
    wrk_bin, nginx_bin, notes = ensure_tools()
    if wrk_bin is None:
        return print_table(
            "HLS origin", [], ["wrk is not installed (apt-get install wrk): nothing measured"]
        )
    if nginx_bin is None:
        notes.append("nginx is not installed (apt-get install nginx-light): no reference")
    results = await measure(wrk_bin, nginx_bin, connections, seconds, vod_seconds, notes)
    notes += [
        f"wrk -t1 -c{'/'.join(map(str, connections))} --latency, {seconds:g} s per live URL,"
        f" {vod_seconds:g} s per upload/playlist URL; ours, then the floor, then nginx on the"
        " same path and bytes",
        f"nothing pinned: wrk, the server and PostgreSQL share the {os.cpu_count()} cores"
        " (wrk alone takes most of one); 'machine busy' is the whole machine during the run",
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
        columns=("metric", "ours", "floor (bare aiohttp)", "nginx"),
    )


def test_origin() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    asyncio.run(run())
