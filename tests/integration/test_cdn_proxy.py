"""A CDN in front of a node: nginx (`proxy_cache`, Debian's package) running the config
operators are given, `docs/cdn/nginx.conf`, on loopback before a real node.

A crowd of HLS players (each its own connection pool and `User-Agent`) plays a live stream
and an upload's playlist through it: every segment reaches the origin at most once, the live
playlist at most once per `max-age`, and no player is handed a playlist more than a target
duration stale. Per-user responses (a private stream by token or signed link, a paid stream,
an upload, a private playlist, the API's JSON) are never answered from the cache, never reach
another user, and say `private` — also through a cache that trusts the origin's
`Cache-Control` alone (the config without its bypass lines).

What reached the origin is read from the proxy's own log (`$upstream_addr` of each client
request) and checked against the node's request counters."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import string
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from hls.playlist import parse_media_playlist
from relay.manager import RELAYS, Relay
from tests.accounts import user_headers
from tests.audio import make_mp3
from tests.livenode import LiveNode, eventually, start_live_node
from tests.loopback import free_port
from tests.nginx import find_nginx, install_nginx, run_nginx
from tests.playlists import PLAYLISTS, create, upload_track
from tests.sources import IcecastSource
from tests.streams import register_stream, subscriber_of
from tests.uploads import UPLOADS, ready_upload

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "cdn" / "nginx.conf"
#: Lines that make the edge skip its cache for per-user requests; without them it trusts
#: the origin's Cache-Control alone.
_BYPASS = ("proxy_cache_bypass", "proxy_no_cache")
TARGET = 2  # HLS_SEGMENT_SECONDS: the live target duration
MAX_AGE = TARGET // 2  # the live playlist's Cache-Control (control/streams/media_routes.py)
PLAYERS = 20
WAVES = 4  # players join in this many waves
PLAY_SECONDS = 5 * TARGET
#: Slack for timing on a shared 2-core machine (and nginx's whole-second expiry clock).
SLACK = 0.5
_SEGMENT = re.compile(r"/hls/(\d+)\.ts$")
_GRANT = re.compile(r"grant=([^\s&\"]+)")


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    binary = find_nginx() or install_nginx()
    if binary is None:
        if os.environ.get("CI"):  # CI must prove the CDN config, never skip it
            pytest.fail("nginx is not installed and could not be installed with apt-get")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    return binary


@dataclass
class Edge:
    """A running nginx edge: its URL and its access log (one JSON line per request)."""

    url: str
    log: Path

    def on(self, url: str) -> str:
        """`url` (absolute, any host) as fetched through this edge."""
        return self.url + URL(url).raw_path_qs

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


StartEdge = Callable[..., Awaitable[Edge]]


@pytest.fixture
async def start_edge(nginx_binary: str, tmp_path: Path) -> AsyncIterator[StartEdge]:
    """`await start_edge(node_url, port, origin_only=False)`: the shipped config, rendered
    as its header says, in front of the node."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(node_url: str, port: int, *, origin_only: bool = False) -> Edge:
            prefix = tmp_path / f"edge-{port}"
            values = {
                "CDN_LISTEN": f"127.0.0.1:{port}",
                "CDN_CACHE_DIR": str(prefix / "cache"),
                "CDN_ACCESS_LOG": str(prefix / "access.log"),
                "MEDIASERVER_NODE": URL(node_url).raw_authority,
            }
            http = string.Template(CONFIG.read_text()).safe_substitute(values)
            if origin_only:
                kept = [x for x in http.splitlines() if not x.strip().startswith(_BYPASS)]
                assert len(kept) == len(http.splitlines()) - len(_BYPASS)
                http = "\n".join(kept)
            await stack.enter_async_context(run_nginx(nginx_binary, prefix, http, port))
            return Edge(f"http://127.0.0.1:{port}", prefix / "access.log")

        yield start


@pytest.fixture
def live_node(aiohttp_client: Any, make_client: Any, make_settings: Any, test_secrets: Any) -> Any:
    async def start(**overrides: Any) -> LiveNode:
        return await start_live_node(aiohttp_client, make_settings, test_secrets, **overrides)

    return start


async def live_relay(node: LiveNode, stream_id: str, segments: int) -> Relay:
    """The stream's relay once its live window holds `segments` segments."""

    async def ready() -> Relay | None:
        relay = node.client.app[RELAYS].relay(uuid.UUID(stream_id))
        return relay if relay is not None and len(relay.hls.window) >= segments else None

    return await eventually(ready, timeout=30)


async def origin_requests(node: LiveNode, endpoint: str) -> int:
    """GETs the node answered on the routes whose template starts with `endpoint`, as
    Prometheus scrapes them."""
    text = await (await node.client.get("/metrics")).text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("http_requests_total{") and f'endpoint="{endpoint}' in line:
            if 'method="GET"' in line:
                total += float(line.rsplit(" ", 1)[1])
    return int(total)


# -- the crowd -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """A live playlist as one player got it: when, and the newest segment it listed."""

    at: float
    newest: int


async def live_player(number: int, url: str, relay: Relay) -> list[Load]:
    """Joins in one of WAVES waves spread over a target duration (the players of a wave
    ask for the same things at once), reloads the playlist every target duration for PLAY_SECONDS
    and fetches each new segment once (the last three at first), checking each against the
    origin's bytes."""
    loads: list[Load] = []
    fetched: set[int] = set()
    agent = {"User-Agent": f"LivePlayer/{number} (cdn test)"}
    async with aiohttp.ClientSession(headers=agent) as session:
        await asyncio.sleep(number % WAVES * TARGET / WAVES)
        end = time.monotonic() + PLAY_SECONDS
        while (started := time.monotonic()) < end:
            async with session.get(url) as response:
                assert response.status == 200, await response.text()
                text = await response.text()
            playlist = parse_media_playlist(text)
            newest = playlist.media_sequence + len(playlist.segments) - 1
            loads.append(Load(time.monotonic(), newest))
            for segment in playlist.segments[-3:] if not fetched else playlist.segments:
                segment_url = URL(url).join(URL(segment.uri))  # absolute or relative URIs
                sequence = int(_SEGMENT.search(segment_url.path).group(1))
                if sequence in fetched:
                    continue
                fetched.add(sequence)
                async with session.get(segment_url) as got:
                    assert got.status == 200, (segment_url, got.status)
                    body = await got.read()
                entry = relay.hls.window.get(sequence)
                assert entry is None or body == entry.payload  # the origin's bytes
            await asyncio.sleep(max(0.0, started + TARGET - time.monotonic()))
    return loads


async def vod_player(number: int, url: str) -> dict[str, bytes]:
    """Joins in one of WAVES waves a second apart, loads the manifest and fetches every
    segment in order; {segment URL: bytes}."""
    got: dict[str, bytes] = {}
    agent = {"User-Agent": f"VodPlayer/{number} (cdn test)"}
    async with aiohttp.ClientSession(headers=agent) as session:
        await asyncio.sleep(number % WAVES)
        async with session.get(url) as response:
            assert response.status == 200, await response.text()
            manifest = parse_media_playlist(await response.text())
        for segment in manifest.segments:
            segment_url = URL(url).join(URL(segment.uri))
            async with session.get(segment_url) as response:
                assert response.status == 200, (segment_url, response.status)
                got[segment_url.path] = await response.read()
    return got


async def watch_window(relay: Relay, appeared: dict[int, float]) -> None:
    """When each new segment entered the origin's playlist."""
    while True:
        appeared.setdefault(relay.hls.window.next_sequence - 1, time.monotonic())
        await asyncio.sleep(0.01)


def origin_lines(lines: list[dict[str, Any]], pattern: str) -> tuple[int, list[dict[str, Any]]]:
    """(client requests whose URI matches `pattern`, those of them that reached the origin)."""
    matching = [line for line in lines if re.fullmatch(pattern, line["uri"])]
    return len(matching), [line for line in matching if line["upstream"]]


def per_uri(lines: list[dict[str, Any]]) -> Counter[str]:
    return Counter(line["uri"] for line in lines)


async def test_a_crowd_of_players_reaches_the_origin_once_per_segment(
    live_node: Any, start_edge: StartEdge, fake_servers: Any
) -> None:
    port = free_port()
    node = await live_node(public_url=f"http://127.0.0.1:{port}", upload_hls_seconds=2)
    edge = await start_edge(node.url, port)
    client = node.client
    _, dj = await user_headers(client)
    stream_id = await register_stream(client, dj, await fake_servers(IcecastSource))
    upload = await ready_upload(client, dj, make_mp3(16.0))
    playlist_id = await create(client, dj, [upload_track(upload["upload_id"])])
    relay = await live_relay(node, stream_id, 3)
    live_url = f"{edge.url}/v1/streams/{stream_id}/live.m3u8"
    vod_url = f"{edge.url}{PLAYLISTS}/{playlist_id}/stream.m3u8"

    appeared: dict[int, float] = {}
    watcher = asyncio.create_task(watch_window(relay, appeared))
    try:
        crowd = await asyncio.gather(
            asyncio.gather(*(live_player(n, live_url, relay) for n in range(PLAYERS))),
            asyncio.gather(*(vod_player(n, vod_url) for n in range(PLAYERS))),
        )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    live_loads, vod_bodies = crowd
    lines = edge.lines()

    # Live segments: each fetched from the origin once, however many players asked.
    base = f"/v1/streams/{stream_id}"
    segment_gets, segment_origin = origin_lines(lines, rf"{base}/hls/\d+\.ts")
    assert segment_origin and set(per_uri(segment_origin).values()) == {1}, per_uri(segment_origin)
    # The live playlist: at most once per max-age (nginx counts whole seconds, so an entry
    # lives between max-age and max-age + 1 s).
    playlist_gets, playlist_origin = origin_lines(lines, rf"{base}/live\.m3u8")
    fetched = sorted(line["time"] for line in playlist_origin)
    gaps = [b - a for a, b in itertools.pairwise(fetched)]
    assert min(gaps) >= MAX_AGE - 0.1, gaps
    # Never a playlist a target duration behind the origin's: the segment after the newest
    # one a player got had not been at the origin for longer than that.
    stale = [
        load.at - appeared[load.newest + 1]
        for loads in live_loads
        for load in loads
        if load.newest + 1 in appeared and appeared[load.newest + 1] < load.at
    ]
    assert max(stale, default=0.0) <= TARGET + SLACK, sorted(stale)[-5:]
    # The node answered exactly what the edge says reached it.
    for endpoint, origin in (("live.m3u8", playlist_origin), ("hls/", segment_origin)):
        assert await origin_requests(node, f"/v1/streams/{{stream_id}}/{endpoint}") == len(origin)

    # The upload's playlist: segments once from the origin, and the same bytes for all; the
    # manifest is `no-cache` (each load counts a play), so every load reaches the origin.
    vod_gets, vod_origin = origin_lines(lines, rf"{PLAYLISTS}/{playlist_id}/hls/.+\.ts")
    assert vod_origin and set(per_uri(vod_origin).values()) == {1}, per_uri(vod_origin)
    assert all(bodies == vod_bodies[0] for bodies in vod_bodies)
    manifest_gets, manifest_origin = origin_lines(lines, rf"{PLAYLISTS}/{playlist_id}/stream\.m3u8")
    assert len(manifest_origin) == manifest_gets == PLAYERS

    # The endless MP3 is relayed through the edge as it comes, not stored.
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{edge.url}{base}/live.mp3") as mp3:
            assert mp3.status == 200 and not mp3.headers.get("X-Cache")
            assert len(await mp3.content.readexactly(16_384)) == 16_384

    def ratio(origin: list[dict[str, Any]], gets: int) -> str:
        return (
            f"{gets} requests, {len(origin)} to the origin (hit ratio {1 - len(origin) / gets:.3f})"
        )

    print(
        f"\nCDN edge, {PLAYERS} live + {PLAYERS} VOD players, {PLAY_SECONDS} s:"
        f"\n live segments ({len(per_uri(segment_origin))}): {ratio(segment_origin, segment_gets)}"
        f"\n live playlist: {ratio(playlist_origin, playlist_gets)}, {len(fetched)} origin"
        f" fetches {min(gaps):.2f}-{max(gaps):.2f} s apart; staleness max"
        f" {max(stale, default=0.0):.2f} s over {sum(map(len, live_loads))} loads"
        f"\n VOD segments ({len(per_uri(vod_origin))}): {ratio(vod_origin, vod_gets)}"
        f"\n VOD manifest: {ratio(manifest_origin, manifest_gets)}"
    )


# -- per-user responses --------------------------------------------------------------------


@dataclass
class Got:
    who: str | None
    status: int
    headers: dict[str, str]
    body: str


def grants(text: str) -> set[str]:
    return set(_GRANT.findall(text))


def first_uri(playlist_url: str, text: str) -> str:
    return str(URL(playlist_url).join(URL(parse_media_playlist(text).segments[0].uri)))


async def per_user_round(edge: Edge, ids: dict[str, str], users: dict[str, dict[str, str]]) -> None:
    """The per-user requests through one edge, each asked twice or by someone else next:
    none is answered by the cache, every 200 says `private` (the API's JSON: nothing a
    cache may keep), and user B never gets a body holding user A's grants."""
    seen: list[Got] = []

    async def ask(path_or_url: str, who: str | None, status: int) -> Got:
        url = edge.on(path_or_url) if "://" in path_or_url else edge.url + path_or_url
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers=users[who] if who else None) as response:
                body = (await response.read()).decode(errors="replace")
                got = Got(who, response.status, dict(response.headers), body)
        assert got.status == status, (url, who, got.status, got.body[:200])
        assert got.headers.get("X-Cache") != "HIT", (url, who)
        cache = set(re.split(r"[,\s]+", got.headers.get("Cache-Control", "")))
        if got.headers["Content-Type"].startswith("application/json"):
            assert not cache & {"public", "s-maxage", "max-age"}, (url, cache)
        elif status == 200:
            assert cache & {"private", "no-store"}, (url, cache)
        seen.append(got)
        return got

    private, paid, open_ = (f"/v1/streams/{ids[k]}" for k in ("private", "paid", "open"))
    # The API hands each listener play links signed for them.
    for who in ("a", "a", "b"):
        await ask(private, who, 200)
    links = {got.who: json.loads(got.body)["play_urls"]["hls"] for got in seen}
    for who in ("a", "a", "b"):
        await ask(links[who], None, 200)  # the link alone, as Safari or VLC plays it
        await ask(f"{private}/live.m3u8", who, 200)  # or a token
    await ask(f"{private}/live.m3u8", None, 401)
    text = (await ask(links["a"], None, 200)).body
    segment = first_uri(edge.on(links["a"]), text)
    await ask(segment, None, 200)  # a segment link (the stream's, for ten minutes)
    await ask(segment, None, 200)
    bare = segment.split("?")[0]
    await ask(bare, "a", 200)  # the same segment by token: the user's too, not public
    await ask(bare, "a", 200)
    await ask(bare, None, 401)

    paid_link = json.loads((await ask(paid, "subscriber", 200)).body)["play_urls"]["hls"]
    await ask(paid_link, None, 200)
    await ask(paid_link, None, 200)
    await ask(f"{paid}/live.m3u8", "b", 403)  # no subscription
    text = (await ask(f"{paid}/live.m3u8", "subscriber", 200)).body
    bare = first_uri(f"{edge.url}{paid}/live.m3u8", text).split("?")[0]
    await ask(bare, "subscriber", 200)
    await ask(bare, "subscriber", 200)
    await ask(bare, None, 403)  # "Subscription required", signed in or not

    upload = f"{UPLOADS}/{ids['upload']}/hls/manifest.m3u8"
    text = (await ask(upload, "dj", 200)).body
    await ask(upload, "dj", 200)
    await ask(upload, "b", 404)  # someone else's upload
    await ask(upload, None, 401)
    upload_segment = first_uri(edge.url + upload, text)
    for who, status in (("dj", 200), ("dj", 200), ("b", 404)):
        await ask(upload_segment, who, status)

    playlist = f"{PLAYLISTS}/{ids['playlist']}/stream.m3u8"
    text = (await ask(playlist, "a", 200)).body
    await ask(playlist, "a", 200)
    await ask(playlist, "b", 200)
    await ask(first_uri(edge.url + playlist, text), None, 200)  # a's segment link
    await ask(first_uri(edge.url + playlist, text), None, 200)

    a_grants = grants(links["a"]) | grants(text)
    assert len(a_grants) >= 2 and not a_grants & grants(links["b"])
    assert not any(a_grants & grants(got.body) for got in seen if got.who == "b")

    # The control: an open stream's segment is kept and served again from the cache.
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{edge.url}{open_}/live.m3u8") as response:
            open_segment = edge.on(first_uri(str(response.url), await response.text()))
        for expected in ("MISS", "HIT"):
            async with session.get(open_segment) as response:
                assert response.headers["X-Cache"] == expected
    # The edge's own account: everything else reached the origin, none was a hit.
    for line in edge.lines():
        if not line["uri"].startswith(f"{open_}/"):
            assert line["cache"] != "HIT" and line["upstream"], line


async def test_per_user_responses_never_come_from_the_cache(
    live_node: Any, start_edge: StartEdge, fake_servers: Any
) -> None:
    ports = free_port(), free_port()
    node = await live_node(public_url=f"http://127.0.0.1:{ports[0]}", upload_hls_seconds=2)
    edges = [
        await start_edge(node.url, ports[0]),
        await start_edge(node.url, ports[1], origin_only=True),
    ]
    client = node.client
    _, dj = await user_headers(client)
    source = await fake_servers(IcecastSource)
    ids = {
        "private": await register_stream(client, dj, source, visibility="private"),
        "paid": await register_stream(client, dj, source, name="Paid", monetization_enabled=True),
        "open": await register_stream(client, dj, source, name="Open"),
    }
    upload = await ready_upload(client, dj, make_mp3(6.0))
    ids["upload"] = upload["upload_id"]
    track = [upload_track(upload["upload_id"])]
    ids["playlist"] = await create(client, dj, track, visibility="private")
    users = {"dj": dj, "subscriber": await subscriber_of(client, dj)}
    users["a"] = (await user_headers(client, "listener"))[1]
    users["b"] = (await user_headers(client, "listener"))[1]
    for kind in ("private", "paid", "open"):
        await live_relay(node, ids[kind], 1)

    for edge in edges:
        await per_user_round(edge, ids, users)
