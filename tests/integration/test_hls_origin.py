"""The VOD HLS origin as players and caches see it: uploads' and playlists' manifests and
segments with Content-Length, ETag (304 on revalidation), byte ranges, gzip, HEAD and CORS;
manifests that follow a playlist's changes at once; play counts buffered in memory that
stay exact (US-5.2) — written every few seconds and on shutdown."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from mediaserver.app import build_app
from tests.accounts import user_headers
from tests.audio import make_mp3
from tests.playlists import PLAYLISTS, create, playlist_body, plays, upload_track
from tests.streams import fresh_database
from tests.uploads import UPLOADS, ready_upload

_URI = re.compile(r"^(?!#)\S+$", re.MULTILINE)


@pytest.fixture
async def database(make_database: Any) -> str:
    return await fresh_database(make_database)


@pytest.fixture
async def node(make_client: Any, database: str) -> TestClient:
    return await make_client(database_url=database)


def uris(manifest: str) -> list[str]:
    return _URI.findall(manifest)


async def stored_plays(database: str, playlist_id: str) -> int:
    """The playlist's play count as written in PostgreSQL (all days)."""
    conn = await asyncpg.connect(database)
    try:
        value = await conn.fetchval(
            "SELECT coalesce(sum(value), 0) FROM analytics "
            "WHERE resource_type = 'playlist' AND resource_id = $1 AND metric = 'play_count'",
            uuid.UUID(playlist_id),
        )
    finally:
        await conn.close()
    return int(value)


async def test_upload_segments_have_length_etag_ranges_and_head(node: TestClient) -> None:
    _, dj = await user_headers(node)
    upload = await ready_upload(node, dj, make_mp3(25.0))
    base = f"{UPLOADS}/{upload['upload_id']}/hls"
    manifest = await node.get(f"{base}/manifest.m3u8", headers=dj)
    assert manifest.status == 200
    segment_url = f"{base}/{uris(await manifest.text())[0]}"

    whole = await node.get(segment_url, headers={**dj, "Origin": "https://player.example"})
    data = await whole.read()
    assert whole.status == 200 and data[0] == 0x47
    assert whole.headers["Content-Length"] == str(len(data))
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert "Transfer-Encoding" not in whole.headers
    etag = whole.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    exposed = whole.headers["Access-Control-Expose-Headers"]
    assert {"Content-Length", "Content-Range", "ETag"} <= set(exposed.split(", "))

    head = await node.head(segment_url, headers=dj)
    assert head.status == 200 and await head.read() == b""
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["ETag"] == etag
    assert head.headers["Content-Type"] == "video/mp2t"

    again = await node.get(segment_url, headers={**dj, "If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    assert again.headers["ETag"] == etag
    other = await node.get(segment_url, headers={**dj, "If-None-Match": '"something-else"'})
    assert other.status == 200 and await other.read() == data

    part = await node.get(segment_url, headers={**dj, "Range": "bytes=188-375"})
    assert part.status == 206 and await part.read() == data[188:376]
    assert part.headers["Content-Range"] == f"bytes 188-375/{len(data)}"
    assert part.headers["Content-Length"] == "188"
    head_part = await node.head(segment_url, headers={**dj, "Range": "bytes=188-375"})
    assert head_part.status == 200  # RFC 9110 §14.2: ranges are for GET
    assert head_part.headers["Content-Length"] == str(len(data))
    tail = await node.get(segment_url, headers={**dj, "Range": "bytes=-100"})
    assert tail.status == 206 and await tail.read() == data[-100:]
    stale = await node.get(segment_url, headers={**dj, "Range": "bytes=0-9", "If-Range": '"x"'})
    assert stale.status == 200 and await stale.read() == data  # changed since: all of it
    past = await node.get(segment_url, headers={**dj, "Range": f"bytes={len(data)}-"})
    assert past.status == 416 and past.headers["Content-Range"] == f"bytes */{len(data)}"
    assert await past.json() == {
        "error": f"Range not satisfiable: the media is {len(data)} bytes long",
        "code": 416,
    }

    # The access rules are those of GET: no token, someone else's token → refused.
    assert (await node.head(segment_url)).status == 401
    _, stranger = await user_headers(node)
    assert (await node.head(segment_url, headers=stranger)).status == 404
    assert (await node.get(f"{base}/manifest.m3u8", headers=stranger)).status == 404


async def test_a_deleted_upload_stops_playing_at_once(node: TestClient) -> None:
    _, dj = await user_headers(node)
    upload = await ready_upload(node, dj, make_mp3(12.0))
    base = f"{UPLOADS}/{upload['upload_id']}/hls"
    text = await (await node.get(f"{base}/manifest.m3u8", headers=dj)).text()
    segment_url = f"{base}/{uris(text)[0]}"
    assert (await node.get(segment_url, headers=dj)).status == 200  # now in memory
    assert (await node.delete(f"{UPLOADS}/{upload['upload_id']}", headers=dj)).status == 204
    assert (await node.get(segment_url, headers=dj)).status == 404
    assert (await node.get(f"{base}/manifest.m3u8", headers=dj)).status == 404


async def test_playlist_manifest_gzip_etag_head_and_exact_play_counts(
    node: TestClient, database: str
) -> None:
    _, dj = await user_headers(node)
    uploads = [await ready_upload(node, dj, make_mp3(30.0)) for _ in range(2)]
    playlist_id = await create(node, dj, [upload_track(u["upload_id"]) for u in uploads])
    path = f"{PLAYLISTS}/{playlist_id}/stream.m3u8"

    plain = await node.get(path, headers={"Accept-Encoding": "identity"})
    text = await plain.text()
    assert plain.status == 200 and "Content-Encoding" not in plain.headers
    assert plain.headers["Content-Length"] == str(len(text.encode()))
    assert plain.headers["Cache-Control"] == "no-cache"
    assert plain.headers["Vary"] == "Accept-Encoding"
    packed = await node.get(path, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert await packed.text() == text  # the client decompressed it
    assert int(packed.headers["Content-Length"]) < len(text.encode())
    assert packed.headers["ETag"] != plain.headers["ETag"]  # one validator per coding

    head = await node.head(path)
    assert head.status == 200 and await head.read() == b""
    revalidated = await node.get(path, headers={"If-None-Match": plain.headers["ETag"]})
    assert revalidated.status == 304  # the copy it holds suits it, though it accepts gzip
    assert revalidated.headers["ETag"] == plain.headers["ETag"]  # so a cache can use the 304

    # 2 GETs, the 304 counts (a player replaying it), HEAD does not; then 47 players at once.
    results = await asyncio.gather(*(node.get(path) for _ in range(47)))
    assert [r.status for r in results] == [200] * 47
    assert await plays(node, dj, playlist_id) == 50  # the report writes this node's counts


async def test_play_counts_are_written_every_few_seconds_and_on_shutdown(
    aiohttp_client: Any, make_settings: Any, test_secrets: Any, database: str
) -> None:
    node = await aiohttp_client(build_app(make_settings(database_url=database), test_secrets))
    _, dj = await user_headers(node)
    upload = await ready_upload(node, dj, make_mp3(5.0))
    playlist_id = await create(node, dj, [upload_track(upload["upload_id"])])
    path = f"{PLAYLISTS}/{playlist_id}/stream.m3u8"

    for _ in range(7):
        assert (await node.get(path)).status == 200
    deadline = time.monotonic() + 15
    while await stored_plays(database, playlist_id) != 7:  # no report asked for: the timer
        assert time.monotonic() < deadline, await stored_plays(database, playlist_id)
        await asyncio.sleep(0.1)

    for _ in range(5):
        assert (await node.get(path)).status == 200
    await node.close()  # the node shuts down right after the last play
    assert await stored_plays(database, playlist_id) == 12


async def test_a_playlist_change_shows_in_its_manifest_at_once(node: TestClient) -> None:
    _, dj = await user_headers(node)
    _, listener = await user_headers(node, "listener")
    first = await ready_upload(node, dj, make_mp3(12.0))
    second = await ready_upload(node, dj, make_mp3(22.0))
    tracks = [upload_track(first["upload_id"]), upload_track(second["upload_id"])]
    playlist_id = await create(node, dj, tracks)
    path = f"{PLAYLISTS}/{playlist_id}"

    before = await (await node.get(f"{path}/stream.m3u8")).text()
    assert len(uris(before)) == 2 + 3 and "grant=" not in before
    segment = uris(before)[0]
    public = await node.session.get(segment)
    assert public.status == 200 and public.headers["Cache-Control"].startswith("public")

    # Reordered and made private: the very next load has the new order and grants.
    body = playlist_body(tracks[::-1], visibility="private")
    assert (await node.put(path, json=body, headers=dj)).status == 200
    assert (await node.get(f"{path}/stream.m3u8")).status == 401
    after = await (await node.get(f"{path}/stream.m3u8", headers=listener)).text()
    assert len(uris(after)) == 3 + 2 and all("?grant=" in uri for uri in uris(after))
    order = [uri.split("/hls/")[1].split("/")[0] for uri in uris(after)]
    assert order[0] == uris(before)[-1].split("/hls/")[1].split("/")[0]  # second first now
    assert (await node.session.get(segment)).status == 401  # no grant, no token: private now
    granted = await node.session.get(uris(after)[0])
    assert granted.status == 200 and granted.headers["Cache-Control"].startswith("private")
    with_token = await node.session.get(segment, headers=listener)  # allowed, but not for caches
    assert with_token.status == 200 and with_token.headers["Cache-Control"].startswith("private")

    # One track dropped: its segments are gone from the manifest and from the route.
    dropped = uris(after)[-1]
    one = playlist_body(tracks[1:], visibility="private")
    assert (await node.put(path, json=one, headers=dj)).status == 200
    fewer = await (await node.get(f"{path}/stream.m3u8", headers=dj)).text()
    assert len(uris(fewer)) == 3
    assert (await node.session.get(dropped)).status == 404

    # Deleted: 404 at once, manifest and segments alike.
    assert (await node.delete(path, headers=dj)).status == 204
    assert (await node.get(f"{path}/stream.m3u8", headers=dj)).status == 404
    assert (await node.session.get(uris(fewer)[0])).status == 404
