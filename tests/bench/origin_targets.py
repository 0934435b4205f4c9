"""What the origin benchmark (`tests/bench/bench_origin.py`) loads on our node: a live
stream relayed from a fake Icecast source, an upload and a public playlist made of it, and
for each URL the bytes and response headers the floor and nginx serve in its place."""

from __future__ import annotations

import asyncio
import functools
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin

import aiohttp

from tests.audio import make_mp3
from tests.bench.harness import PASSWORD, Node, env_int, register_stream
from tests.sources import IcecastSource

MIN_SEGMENTS = 3
VOD_SECONDS = 30.0  # length of the uploaded MP3: three 10 s segments
_URI = re.compile(r"^(?!#)\S+$", re.MULTILINE)


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


async def newest_segment(live_url: str) -> str:
    """The URL of the newest segment the live playlist lists now."""
    async with aiohttp.ClientSession() as session:
        return last_uri((await fetch(session, live_url)).decode(), live_url)


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


@dataclass(frozen=True)
class Target:
    name: str
    url: str  # ours
    body: bytes  # what the floor and nginx serve for it
    tokens: list[str]  # Bearer tokens the requests take in turn (none: anonymous)
    seconds: float
    #: Our response's headers that the floor does not set itself (`response_headers`).
    headers: dict[str, str] = field(default_factory=dict)
    #: Our URL to load now, when it changes (a live segment leaves the window after ~36 s,
    #: sooner than rounds of four loads end): called before each load of our node.
    current: Callable[[], Awaitable[str]] | None = None

    async def ours(self) -> str:
        return self.url if self.current is None else await self.current()


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
                current=functools.partial(newest_segment, live_url),
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


#: Headers the floor sets itself (or that are about the connection): not copied from ours.
_FLOOR_OWN = frozenset(
    ("date", "content-length", "content-type", "connection", "keep-alive", "transfer-encoding")
)


async def response_headers(url: str, tokens: Sequence[str]) -> dict[str, str]:
    """The headers our node answers `url` with, as wrk asks for it (no compression), less
    those the floor sets itself: what "the same response" costs aiohttp without our code."""
    headers = {"Accept-Encoding": "identity", "User-Agent": "bench"}
    if tokens:
        headers["Authorization"] = f"Bearer {tokens[0]}"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        await response.read()
        assert response.status == 200, f"GET {url}: {response.status}"
        return {k: v for k, v in response.headers.items() if k.lower() not in _FLOOR_OWN}


async def targets_of(
    node: Node, source: IcecastSource, seconds: float, vod_seconds: float, notes: list[str]
) -> list[Target]:
    """The live stream, the upload and the playlist made on `node`, and what to load."""
    vod_task = asyncio.create_task(prepare_vod(node.base_url, env_int("BENCH_TOKENS", 16)))
    stream_id = await register_stream(
        node.base_url, source.url, source.mount, source.admin_password
    )
    vod: Vod | None = None
    try:
        vod = await vod_task
    except (AssertionError, RuntimeError, aiohttp.ClientError, KeyError) as exc:
        notes.append(f"upload/playlist routes skipped: could not prepare them ({exc!r})")
    targets = await collect(node.base_url, stream_id, vod, seconds, vod_seconds)
    targets = [replace(t, headers=await response_headers(t.url, t.tokens)) for t in targets]
    sizes = ", ".join(f"{t.name} {len(t.body):,} B" for t in targets)
    notes.append(f"bodies: {sizes}")
    return targets
