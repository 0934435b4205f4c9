"""A web listener hears no stall across a kill -9 of the stream's owner: hls.js (pinned by
tests/player/package-lock.json) in Debian's Chromium, driven by Playwright, plays a live
stream through a node that does not relay it while the owner is killed.

Production timing: 6 s segments, 5 s leases. A player holds about three target durations
of audio; the node that takes the stream over must carry the playlist on (media sequence
never backwards, one new EXT-X-DISCONTINUITY) before that buffer runs dry. Two players
listen, each reloading the playlist at its own moment after the owner publishes a segment
(1 s and 5 s after), and the owner is killed 3 s after it publishes one: the first player
has that segment, the second has not yet seen it (as about half of all players at any
kill). The test prints where the time went (lease, source, first segment, each player's
next playlist) and the audio each player had ahead of it, second by second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from hls.playlist import parse_media_playlist
from mediaserver import cluster as placement
from tests.browser import chromium
from tests.cluster import Cluster, Node, eventually
from tests.integration.test_cluster import dj_headers, owner_of, register_on
from tests.npm import pinned_package
from tests.sources import IcecastSource, fake_servers_fixture  # noqa: F401

pytestmark = pytest.mark.timeout(180)

PLAYER = Path(__file__).parents[1] / "player"
HLS_JS = PLAYER / "node_modules" / "hls.js" / "dist" / "hls.min.js"
SEGMENT_SECONDS = 6
LEASE_SECONDS = 5
#: Played steadily before the kill, and on after it.
BEFORE_KILL_SECONDS = 10.0
AFTER_KILL_SECONDS = 30.0
#: When each player loads the playlist, and when the owner dies, after it publishes a segment.
PLAYER_PHASES = (1.0, 5.0)
KILL_PHASE = 3.0
#: A sample of currentTime every 250 ms: a longer window than this without progress is a stall.
MAX_STILL_SECONDS = 1.0
#: A Redis database of its own (emptied first): another cluster test running beside this one
#: on the machine (tests/cluster.py's database) cannot flush its leases in mid-takeover.
REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture(scope="session")
def hls_js() -> Path:
    """hls.js as pinned by tests/player/package-lock.json (`npm ci` when not yet there)."""
    pinned_package(PLAYER, "hls.js", "the player test")
    assert HLS_JS.is_file()
    return HLS_JS


@pytest.fixture
async def browser(hls_js: Path) -> AsyncIterator[Any]:
    async with chromium("--autoplay-policy=no-user-gesture-required") as launched:
        yield launched


@pytest.fixture
async def player_site(aiohttp_server: Any, hls_js: Path) -> str:
    """The web player's own origin (another origin than the nodes': CORS applies)."""

    async def page(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(PLAYER / "player.html")

    async def script(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(hls_js)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/hls.js", script)
    server = await aiohttp_server(app)
    return str(server.make_url("/"))


@pytest.fixture
def cluster_database(make_database: Any) -> str:
    return str(make_database())


@pytest.fixture
async def cluster(cluster_database: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    redis = aioredis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    async with Cluster(cluster_database, tmp_path, REDIS_URL=REDIS_URL) as running:
        yield running


@dataclass
class Takeover:
    """Seconds from the kill until the next owner held the lease, had its source and served
    a playlist (asked directly)."""

    lease: float | None = None
    source: float | None = None
    playlist: float | None = None


async def watch_takeover(
    node: Node, stream_id: str, killed: float, seen: Takeover, published: int
) -> None:
    """Until `node` holds the lease (its value is "<name>/<instance>") and lists a segment
    of its own (numbered after the dead owner's last, `published`)."""
    redis = aioredis.from_url(REDIS_URL)
    try:
        async with node.session() as http:
            while seen.playlist is None:
                if seen.lease is None:
                    holder = await redis.get(f"{placement.PREFIX}lease:{stream_id}")
                    if holder is not None and holder.decode().split("/")[0] == node.name:
                        seen.lease = time.time() - killed
                url = f"/v1/streams/{stream_id}/live.m3u8"
                async with http.get(url, allow_redirects=False) as response:
                    if seen.lease is not None and response.status == 200:
                        playlist = parse_media_playlist(await response.text())
                        newest = playlist.media_sequence + len(playlist.segments) - 1
                        if newest > published:
                            seen.playlist = time.time() - killed
                await asyncio.sleep(0.05)
        seen.source = source_connected(node, killed)
    finally:
        await redis.aclose()


def source_connected(node: Node, killed: float) -> float | None:
    """Seconds from the kill until `node` logged that its source connected."""
    for line in node.log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("message") == "source connected":
                at = datetime.fromisoformat(entry["time"]).timestamp()
                if at >= killed:
                    return at - killed
    return None


@dataclass
class Listening:
    """What the page recorded (tests/player/player.html), times in seconds since the epoch."""

    started: float
    samples: list[list[float]]  # [at, currentTime, buffered end]
    waiting: list[list[float]]
    errors: list[dict[str, Any]]
    loading: list[list[Any]]
    playlists: list[dict[str, Any]]
    fragments: list[dict[str, Any]]

    @classmethod
    async def of(cls, page: Any) -> Listening:
        data = await page.evaluate("window.record")
        samples = [s for s in data["samples"] if data["started"] and s[0] >= data["started"]]
        return cls(
            data["started"] or 0.0,
            samples,
            data["waiting"],
            data["errors"],
            data["loading"],
            data["playlists"],
            data["fragments"],
        )

    def played(self, since: float = 0.0) -> tuple[float, float]:
        """Seconds of media played and of wall time from `since` on."""
        after = [s for s in self.samples if s[0] >= since]
        if len(after) < 2:
            return 0.0, 0.0
        return after[-1][1] - after[0][1], after[-1][0] - after[0][0]

    def ahead(self, since: float, until: float = float("inf")) -> float:
        """The least audio the player had buffered ahead between `since` and `until`."""
        return min((s[2] - s[1] for s in self.samples if since <= s[0] <= until), default=0.0)

    def still(self) -> list[tuple[float, float]]:
        """(start, seconds) of each stretch longer than MAX_STILL_SECONDS in which
        currentTime did not move."""
        windows, since = [], self.samples[0]
        for sample in [*self.samples[1:], [self.samples[-1][0], float("inf")]]:
            if sample[1] > since[1]:
                if sample[0] - since[0] > MAX_STILL_SECONDS + 0.25:  # a sample's jitter
                    windows.append((since[0], sample[0] - since[0]))
                since = sample
        return windows


def discontinuities(text: str) -> set[int]:
    """Media sequence numbers of the segments an EXT-X-DISCONTINUITY precedes."""
    playlist = parse_media_playlist(text)
    return {
        playlist.media_sequence + n
        for n, segment in enumerate(playlist.segments)
        if segment.discontinuity
    }


def last_sequence(playlists: list[dict[str, Any]]) -> int:
    newest = [parse_media_playlist(p["text"]) for p in playlists]
    return max(p.media_sequence + len(p.segments) - 1 for p in newest)


async def start_stream(cluster: Cluster, fake_servers: Any) -> tuple[str, Node, Node, Node]:
    """Three nodes at production timing and a public stream with three segments in its
    window (as a player joining a running stream finds it): the stream, its owner, the node
    that will take it over, and the player's way in, the third node."""
    source = await fake_servers(IcecastSource)
    nodes = await cluster.start(
        "node-a",
        "node-b",
        "node-c",
        HLS_SEGMENT_SECONDS=str(SEGMENT_SECONDS),
        CLUSTER_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    stream_id = await register_on(nodes[0], await dj_headers(nodes[0]), source)
    owner = await owner_of(nodes, stream_id)
    others = [node for node in nodes if node is not owner]
    heir_name = placement.owner_of(uuid.UUID(stream_id), [node.name for node in others])
    heir = next(node for node in others if node.name == heir_name)
    entry = next(node for node in others if node is not heir)

    async def window() -> bool:
        async with owner.session() as http:
            async with http.get(f"/v1/streams/{stream_id}/live.m3u8") as response:
                text = await response.text() if response.status == 200 else ""
        return bool(text) and len(parse_media_playlist(text).segments) >= 3

    await eventually(window, timeout=4 * SEGMENT_SECONDS + 10, interval=0.5)
    return stream_id, owner, heir, entry


async def check_cors(player_site: str, playlist_url: str, owner: Node) -> None:
    """What a player on another origin gets from the node it entered by: CORS headers on
    the playlist and on the redirects (segments) to the owner."""
    origin = player_site.rstrip("/")
    async with aiohttp.ClientSession(headers={"Origin": origin}) as http:
        async with http.get(playlist_url, allow_redirects=False) as response:
            assert response.headers.get("Access-Control-Allow-Origin") in ("*", origin)
            if response.status == 307:
                assert response.headers["Location"].startswith(owner.url)
                playlist_url = response.headers["Location"]
            async with http.get(playlist_url) as final:
                segment = parse_media_playlist(await final.text()).segments[-1].uri
        segment_url = urljoin(str(response.url), segment)
        async with http.get(segment_url, allow_redirects=False) as response:
            assert response.headers.get("Access-Control-Allow-Origin") in ("*", origin)
            if response.status == 307:
                assert response.headers["Location"].startswith(owner.url)


def report(
    name: str, heard: Listening, killed: float, takeover: Takeover, nodes: dict[str, Node]
) -> None:
    """Where the time went, and what the player had ahead of it (shown on failure). URLs
    name their node: `nodes` by role."""

    inf = float("inf")

    def at(value: float | None) -> str:
        return "never" if value is None else f"{value:+.1f} s"

    before = [p for p in heard.playlists if p["at"] < killed]
    last = last_sequence(before)
    resumed = next(
        (
            p["at"] - killed
            for p in heard.playlists
            if p["at"] > killed and last_sequence([p]) > last
        ),
        None,
    )
    fragment = next((f["at"] - killed for f in heard.fragments if f["sn"] > last), None)
    played, wall = heard.played(killed)
    print(
        f"\n{name}: last segment before the kill {last}\n"
        f"takeover after kill -9: lease {at(takeover.lease)}, source {at(takeover.source)}, "
        f"first segment {at(takeover.playlist)}; the player's first new playlist "
        f"{at(resumed)}, segment {at(fragment)}\n"
        f"audio ahead: at least {heard.ahead(killed - 6, killed):.1f} s before the kill, "
        f"{heard.ahead(killed, killed + (fragment or inf)):.1f} s until the new segment, "
        f"{heard.ahead(killed + (fragment or inf)):.1f} s after it\n"
        f"currentTime advanced {played:.1f} s in {wall:.1f} s after the kill "
        f"({played / wall:.0%}); waiting {len(heard.waiting)}, hls.js errors "
        f"{len(heard.errors)}, still > {MAX_STILL_SECONDS:.0f} s: {len(heard.still())}"
    )

    def named(url: str | None) -> str:
        for role, node in nodes.items():
            url = (url or "").replace(node.url, f"<{role}: {node.name}>")
        return url or "-"

    for error in heard.errors:
        where = named(error["url"])
        print(f"  hls.js error {at(error['at'] - killed)}: {error | {'url': where}}")
    for load in heard.loading:
        print(f"  playlist request {at(load[0] - killed)}: {named(load[1])}")
    for loaded in heard.fragments:
        print(f"  segment loaded {at(loaded['at'] - killed)}: {named(loaded['url'])}")
    for sample in heard.samples[::4]:
        print(
            f"  {at(sample[0] - killed)}: currentTime {sample[1]:5.1f}, "
            f"ahead {sample[2] - sample[1]:4.1f} s"
        )


async def newest(node: Node, stream_id: str) -> int | None:
    """The newest segment number in `node`'s live playlist (asked directly)."""
    async with node.session() as http:
        async with http.get(f"/v1/streams/{stream_id}/live.m3u8", allow_redirects=False) as got:
            if got.status != 200:
                return None
            return last_sequence([{"text": await got.text()}])


async def after_next_segment(node: Node, stream_id: str, seconds: float) -> int:
    """Wait until `seconds` after `node` publishes its next segment; its number."""
    before = await newest(node, stream_id)

    async def published() -> int | None:
        number = await newest(node, stream_id)
        return number if number is not None and number != before else None

    number = await eventually(published, timeout=2 * SEGMENT_SECONDS, interval=0.05)
    await asyncio.sleep(seconds)
    return number


async def test_hls_players_hear_no_stall_across_a_kill_of_the_owner(
    cluster: Cluster, fake_servers: Any, browser: Any, player_site: str
) -> None:
    stream_id, owner, heir, entry = await start_stream(cluster, fake_servers)
    playlist_url = f"{entry.url}/v1/streams/{stream_id}/live.m3u8"
    await check_cors(player_site, playlist_url, owner)
    pages = []
    await after_next_segment(owner, stream_id, 0.0)
    started = time.monotonic()
    for phase in PLAYER_PHASES:  # both after the same segment
        await asyncio.sleep(phase - (time.monotonic() - started))
        page = await browser.new_page()
        await page.goto(player_site)
        assert await page.evaluate("url => window.play(url)", playlist_url) == "playing"
        pages.append(page)

    async def steady() -> bool:
        heard = [await Listening.of(page) for page in pages]
        return all(each.played()[0] >= BEFORE_KILL_SECONDS for each in heard)

    await eventually(steady, timeout=BEFORE_KILL_SECONDS + 15, interval=0.25)
    published = await after_next_segment(owner, stream_id, KILL_PHASE)
    killed = time.time()
    await cluster.kill(owner)
    takeover = Takeover()
    watcher = asyncio.create_task(watch_takeover(heir, stream_id, killed, takeover, published))
    await asyncio.sleep(AFTER_KILL_SECONDS)  # the players play on; what they heard is measured
    heard = [await Listening.of(page) for page in pages]
    watcher.cancel()  # done by now, unless the stream was never taken over
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    roles = {"killed owner": owner, "next owner": heir, "entry": entry}
    for n, (each, phase) in enumerate(zip(heard, PLAYER_PHASES, strict=True)):
        name = f"player {n + 1} (loads the playlist {phase:.0f} s after a segment is published)"
        report(name, each, killed, takeover, roles)
    print(f"the owner published segment {published} {KILL_PHASE:.0f} s before the kill")

    # As planned: the first player had the last segment published, the second had not.
    assert [last_sequence([p for p in each.playlists if p["at"] < killed]) for each in heard] == [
        published,
        published - 1,
    ]
    for each in heard:
        # Across the kill: from the moment the player was playing steadily before it (a
        # start-up hiccup on a loaded machine is not what this measures).
        assert each.errors == []
        assert [w for w in each.waiting if w[0] >= killed - BEFORE_KILL_SECONDS] == []
        assert [w for w in each.still() if w[0] + w[1] >= killed - BEFORE_KILL_SECONDS] == []
        played, wall = each.played(killed)
        assert played >= 0.9 * wall, (played, wall)
        # The playlists the player got: numbers never back, one new discontinuity, after
        # the segments it had before the kill.
        sequences = [parse_media_playlist(p["text"]).media_sequence for p in each.playlists]
        assert sequences == sorted(sequences), sequences
        before = [p for p in each.playlists if p["at"] < killed]
        seen = set().union(*(discontinuities(p["text"]) for p in before))
        new = set().union(*(discontinuities(p["text"]) for p in each.playlists)) - seen
        assert len(new) == 1 and min(new) > last_sequence(before), (new, last_sequence(before))
