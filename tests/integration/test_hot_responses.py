"""Hot responses (`mediaserver/hotpath.py`) as players and the CDN meet them, on a node served
as `mediaserver serve` serves it: a repeated media GET is answered from the connection with
the very bytes aiohttp sent (fresh `Date` and `X-Request-ID`), counted in the metrics, the
rate limit, play counts and HLS sessions; a change to what it was built from shows at once;
anything unusual on the wire (pipelining, bodies, split heads) is aiohttp's as before."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from control.security import LEEWAY_SECONDS
from mediaserver.hotpath import HOT
from relay.manager import RELAYS
from tests.accounts import user_headers
from tests.audio import make_mp3
from tests.live import connected, eventually, register_stream
from tests.playlists import PLAYLISTS, create, playlist_body, plays, upload_track
from tests.sources import IcecastSource
from tests.streams import subscriber_of
from tests.uploads import UPLOADS, ready_upload

_URI = re.compile(r"^(?!#)\S+$", re.MULTILINE)


class Wire:
    """One raw keep-alive connection to the node: exact request bytes, parsed responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, client: TestClient) -> Wire:
        assert client.server.port is not None
        return cls(*await asyncio.open_connection("127.0.0.1", client.server.port))

    async def send(self, *parts: bytes) -> None:
        for part in parts:
            self.writer.write(part)
            await self.writer.drain()
            await asyncio.sleep(0.02)  # each part its own segment on the wire

    async def response(self, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        status_line, *lines = raw.decode("latin-1").split("\r\n")[:-2]
        headers = dict(line.split(": ", 1) for line in lines)
        length = 0 if head else int(headers.get("Content-Length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), 5)
        return int(status_line.split()[1]), headers, body

    async def get(self, path: str, *extra: str, method: str = "GET") -> tuple[int, dict, bytes]:
        await self.send(request(path, *extra, method=method))
        return await self.response(head=method == "HEAD")

    def close(self) -> None:
        self.writer.close()


def request(path: str, *extra: str, method: str = "GET") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "User-Agent: hot-test", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def hits(client: TestClient) -> int:
    return client.server.app[HOT].hits


def per_hit(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in ("Date", "X-Request-ID")}


@pytest.fixture
async def node(make_client: Any) -> TestClient:
    return await make_client()


async def test_a_repeated_segment_get_is_answered_hot_byte_for_byte(node: TestClient) -> None:
    _, dj = await user_headers(node)
    upload = await ready_upload(node, dj, make_mp3(12.0))
    base = f"{UPLOADS}/{upload['upload_id']}/hls"
    auth = f"Authorization: {dj['Authorization']}"
    wire = await Wire.open(node)
    status, _, manifest = await wire.get(f"{base}/manifest.m3u8", auth)
    segment = f"{base}/{_URI.findall(manifest.decode())[0]}"

    before = hits(node)
    answers = [await wire.get(segment, auth) for _ in range(5)]
    assert hits(node) - before >= 3  # the first on a connection, and the one offering it, aren't
    assert [a[0] for a in answers] == [200] * 5
    first = answers[0]
    assert all(a[2] == first[2] and per_hit(a[1]) == per_hit(first[1]) for a in answers)
    assert first[2][0] == 0x47 and first[1]["Content-Type"] == "video/mp2t"
    assert len({a[1]["X-Request-ID"] for a in answers}) == 5  # one id per response
    assert all(a[1]["Date"].endswith(" GMT") for a in answers)
    assert first[1]["X-Content-Type-Options"] == "nosniff"  # the security headers, as sent

    for _ in range(3):  # HEAD: the same headers, never a body (or the next answer breaks)
        status, headers, body = await wire.get(segment, auth, method="HEAD")
        assert (status, body, headers["Content-Length"]) == (200, b"", str(len(first[2])))
    assert (await wire.get(segment, auth))[2] == first[2]
    status, _, body = await wire.get(segment, auth, "Range: bytes=0-187")
    assert status == 206 and body == first[2][:188]  # another head: aiohttp's answer
    status, _, _ = await wire.get(segment)  # no token: never the owner's bytes
    assert status == 401
    wire.close()

    metrics = await (await node.get("/metrics")).text()
    counted = re.search(
        r'http_requests_total\{code="200",endpoint="[^"]+/hls/\{segment[^}]*\}",'
        r'method="GET"\} (\d+)',
        metrics,
    )
    assert counted and float(counted.group(1)) >= 5, metrics  # hot hits counted as requests
    assert "mediaserver_hot_responses_total" in metrics


async def test_changes_show_at_once_in_what_was_answered_hot(node: TestClient) -> None:
    _, dj = await user_headers(node)
    upload = await ready_upload(node, dj, make_mp3(12.0))
    playlist_id = await create(node, dj, [upload_track(upload["upload_id"])])
    path = f"{PLAYLISTS}/{playlist_id}/stream.m3u8"
    wire = await Wire.open(node)
    for _ in range(4):
        status, _, manifest = await wire.get(path)
        assert status == 200
    before = hits(node)
    assert (await wire.get(path))[0] == 200
    assert hits(node) == before + 1

    # Made private through this node: the same request is refused on the very next try.
    body = playlist_body([upload_track(upload["upload_id"])], visibility="private")
    assert (await node.put(f"{PLAYLISTS}/{playlist_id}", json=body, headers=dj)).status == 200
    assert (await wire.get(path))[0] == 401

    # The upload deleted: its segment, answered hot a moment ago, is gone at once.
    name = _URI.findall(manifest.decode())[0].rsplit("/", 1)[1].split("?")[0]
    segment = f"{UPLOADS}/{upload['upload_id']}/hls/{name}"
    auth = f"Authorization: {dj['Authorization']}"
    for _ in range(3):
        assert (await wire.get(segment, auth))[0] == 200
    deleted = await node.delete(f"{UPLOADS}/{upload['upload_id']}?force=true", headers=dj)
    assert deleted.status == 204
    assert (await wire.get(segment, auth))[0] == 404
    wire.close()


async def test_hot_plays_count_and_the_hot_path_can_be_turned_off(make_client: Any) -> None:
    for seconds, hot_expected in ((1.0, True), (0.0, False)):
        node = await make_client(media_hot_seconds=seconds)
        _, dj = await user_headers(node)
        upload = await ready_upload(node, dj, make_mp3(5.0))
        playlist_id = await create(node, dj, [upload_track(upload["upload_id"])])
        wire = await Wire.open(node)
        path = f"{PLAYLISTS}/{playlist_id}/stream.m3u8"
        for _ in range(20):
            assert (await wire.get(path))[0] == 200
        assert (await wire.get(path, method="HEAD"))[0] == 200  # HEAD plays nothing
        wire.close()
        assert (hits(node) >= 17) is hot_expected
        assert await plays(node, dj, playlist_id) == 20  # exact, hot or not
        await node.close()


async def test_pipelined_split_and_bodied_requests_are_answered_in_order(
    node: TestClient,
) -> None:
    _, dj = await user_headers(node)
    upload = await ready_upload(node, dj, make_mp3(5.0))
    playlist_id = await create(node, dj, [upload_track(upload["upload_id"])])
    path = f"{PLAYLISTS}/{playlist_id}/stream.m3u8"
    other = f"{PLAYLISTS}/{playlist_id}"
    wire = await Wire.open(node)
    for _ in range(3):
        status, _, manifest = await wire.get(path)

    # Three requests in one write: answered in order, whichever way each goes.
    await wire.send(
        request(path) + request(other, f"Authorization: {dj['Authorization']}") + request(path)
    )
    first, second, third = [await wire.response() for _ in range(3)]
    assert first[0] == third[0] == 200 and first[2] == third[2] == manifest
    assert second[0] == 200 and b'"playlist_id"' in second[2]

    # A head split across writes, and one byte at a time: whole answers still.
    whole = request(path)
    await wire.send(whole[:10], whole[10:])
    assert (await wire.response())[2] == manifest
    await wire.send(*[whole[i : i + 1] for i in range(len(whole))])
    assert (await wire.response())[2] == manifest
    wire.close()

    # A request with a body on the connection: aiohttp's from then on, nothing mixed up.
    wire = await Wire.open(node)
    body = b'{"title": "x"}'
    post = (
        f"POST {PLAYLISTS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {dj['Authorization']}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    await wire.send(post + body[:5], body[5:])
    status, _, answer = await wire.response()
    assert status == 400 and b"'tracks' is required" in answer  # the body was read whole
    for _ in range(3):
        assert (await wire.get(path))[2] == manifest
    wire.close()


async def test_the_streaming_rate_limit_counts_hot_answers(make_client: Any) -> None:
    # Behind a trusted proxy: each client address (X-Forwarded-For) has its own budget.
    node = await make_client(rate_limit_streaming_per_minute=300, trust_forwarded_for=True)
    _, dj = await user_headers(node)
    upload = await ready_upload(node, dj, make_mp3(5.0))
    playlist_id = await create(node, dj, [upload_track(upload["upload_id"])])
    path = f"{PLAYLISTS}/{playlist_id}/stream.m3u8"
    wire = await Wire.open(node)
    started, answered = time.monotonic(), 0
    while (answer := await wire.get(path, "X-Forwarded-For: 192.0.2.1"))[0] == 200:
        answered += 1  # leases of 3 hits: two of each spent hot
    refilled = 300 / 60 * (time.monotonic() - started)  # the bucket refills as it drains
    status, headers, body = answer
    assert 300 <= answered <= 300 + refilled + 3, (answered, refilled)
    assert status == 429 and int(headers["Retry-After"]) >= 1 and b'"code": 429' in body
    assert hits(node) > 150
    before = hits(node)
    for _ in range(5):  # another listener behind the same proxy: its own budget, hot too
        assert (await wire.get(path, "X-Forwarded-For: 192.0.2.2"))[0] == 200
    assert hits(node) > before  # (192.0.2.1's bucket refills meanwhile: 5 tokens a second)
    wire.close()


async def test_paywalled_answers_are_never_repeated_hot(node: TestClient) -> None:
    _, dj = await user_headers(node)
    subscriber = await subscriber_of(node, dj)
    upload = await ready_upload(node, dj, make_mp3(5.0))
    playlist_id = await create(
        node, dj, [upload_track(upload["upload_id"])], monetization_enabled=True
    )
    path = f"{PLAYLISTS}/{playlist_id}/stream.m3u8"
    wire = await Wire.open(node)
    before = hits(node)
    for _ in range(5):
        assert (await wire.get(path, f"Authorization: {subscriber['Authorization']}"))[0] == 200
    assert hits(node) == before  # each answer rests on a subscription read made for it
    wire.close()


async def test_live_playlist_polls_are_hot_until_the_next_segment(
    make_client: Any, fake_servers: Any
) -> None:
    source = await fake_servers(IcecastSource)
    node = await make_client(hls_segment_seconds=1)
    _, dj = await user_headers(node)
    stream_id = await register_stream(node, source, dj)
    await connected(node, stream_id)
    path = f"/v1/streams/{stream_id}/live.m3u8"

    async def listed() -> bool | None:
        response = await node.get(path)
        return (response.status == 200 and len(_URI.findall(await response.text())) >= 2) or None

    await eventually(listed, 30)
    wire = await Wire.open(node)
    before = hits(node)
    newest = set()
    for _ in range(60):  # 3 s of polls, 20 a second
        status, _, playlist = await wire.get(path)
        assert status == 200
        newest.add(_URI.findall(playlist.decode())[-1])
        await asyncio.sleep(0.05)
    assert hits(node) - before > 30
    assert len(newest) >= 2  # new segments showed up while polls were answered hot
    relay = node.server.app[RELAYS].relay(uuid.UUID(stream_id))
    assert relay is not None and relay.hls_sessions == 1  # one player (address + agent)
    wire.close()


async def test_a_hot_answer_ends_with_the_token_it_was_given_to(
    node: TestClient, test_secrets: Any
) -> None:
    _, dj = await user_headers(node)
    upload = await ready_upload(node, dj, make_mp3(5.0))
    claims = jwt.decode(dj["Authorization"].split()[1], options={"verify_signature": False})
    claims.update(iat=time.time(), exp=time.time() + 1)  # accepted 5 s (the leeway) longer
    short = jwt.encode(claims, test_secrets.jwt_private_pem, algorithm="RS256")
    manifest = f"{UPLOADS}/{upload['upload_id']}/hls/manifest.m3u8"
    wire = await Wire.open(node)
    before = hits(node)
    for _ in range(4):
        assert (await wire.get(manifest, f"Authorization: Bearer {short}"))[0] == 200
    assert hits(node) > before
    await asyncio.sleep(claims["exp"] + LEEWAY_SECONDS + 0.2 - time.time())
    status, _, body = await wire.get(manifest, f"Authorization: Bearer {short}")
    assert status == 401 and b"expired" in body.lower()
    wire.close()


async def test_requests_stamped_by_a_proxy_share_answers_and_keep_their_ids(
    node: TestClient,
) -> None:
    """Behind an ingress (nginx adds `X-Request-ID`, tracers `traceparent`) no two heads
    are the same byte for byte; the answers are shared all the same, each echoing its id."""
    _, dj = await user_headers(node)
    upload = await ready_upload(node, dj, make_mp3(5.0))
    playlist_id = await create(node, dj, [upload_track(upload["upload_id"])])
    path = f"{PLAYLISTS}/{playlist_id}/stream.m3u8"
    wire = await Wire.open(node)
    before = hits(node)
    answers = []
    for n in range(12):
        stamps = (f"X-Request-ID: ingress-{n}", f"traceparent: 00-{n:032x}-{n:016x}-01")
        answers.append(await wire.get(path, *stamps))
    assert hits(node) - before >= 9
    assert [a[1]["X-Request-ID"] for a in answers] == [f"ingress-{n}" for n in range(12)]
    assert len({a[2] for a in answers}) == 1
    status, headers, _ = await wire.get(path, "X-Request-ID: not valid!")
    assert status == 200 and re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])
    wire.close()
    assert await plays(node, dj, playlist_id) == 13
