"""US-3.1, US-3.2, US-9.1 through the HTTP API: real multipart uploads to a node on loopback,
a real PostgreSQL (a database per test, so no other node's workers take our jobs), the
filesystem object store, and the HLS result played by libavformat's own HLS client."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from control.uploads.service import UPLOADS as UPLOADS_SERVICE
from hls.concat import TrackReader
from mediaserver.app import STORE
from mediaserver.config import SETTINGS
from mediaserver.storage import ObjectStore
from tests.accounts import bearer, make_admin, user_headers
from tests.audio import decode_duration, make_mp3
from tests.streams import fresh_database
from tests.uploads import (
    UPLOADS,
    hls_duration,
    job_row,
    post_upload,
    ready_upload,
    upload_mp3,
    wait_processed,
)

UNSUPPORTED = {"error": "Unsupported file type. Please upload an MP3.", "code": 400}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


@pytest.fixture
async def database(make_database: Any) -> str:
    """A database of its own: no other test's node takes these jobs."""
    return await fresh_database(make_database)


@pytest.fixture
async def node(make_client: Any, database: str) -> Any:
    return await make_client(database_url=database)


async def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


def leftovers(data_dir: Path) -> list[Path]:
    """Temporary files anywhere under the node's data dir (store temp files, probe copies)."""
    return [
        p for p in data_dir.rglob("*") if p.is_file() and p.name.startswith((".tmp-", ".probe-"))
    ]


async def test_an_uploaded_mp3_becomes_hls_that_plays_through(node: Any) -> None:
    user, headers = await user_headers(node)
    data = make_mp3(180.0, id3_title="Opening Track")
    # Over the app's 1 MiB JSON body limit: multipart is streamed, not read through it.
    assert len(data) > node.app[SETTINGS].max_json_body_bytes
    response = await post_upload(node, headers, data, filename="opening.mp3")
    assert response.status == 201, await response.text()
    created = await response.json()
    upload_id = created["upload_id"]
    store = node.app[STORE]
    assert created["status"] == "processing"
    assert created["title"] == "Opening Track"  # from the ID3 tag
    assert created["artist"] is None and created["filename"] == "opening.mp3"
    assert created["size_bytes"] == len(data)
    # The backlog's key layout, named without the server's filesystem path.
    folder = f"uploads/audio/{user['user_id']}/{upload_id}"
    assert created["storage_url"] == f"file://objects/{folder}/original.mp3"
    assert str(node.app[SETTINGS].data_dir) not in created["storage_url"]
    # Where it will play, already while it is processing (the backlog's 201 example).
    manifest_url = node.make_url(f"{UPLOADS}/{upload_id}/hls/manifest.m3u8")
    assert created["hls_manifest_url"] == str(manifest_url)
    assert created["error_message"] is None

    body = await wait_processed(node, headers, upload_id)
    assert body["status"] == "ready", body
    assert body["hls_manifest_url"] == str(manifest_url)
    stored = await keys(store, f"{folder}/")
    assert stored[0] == f"{folder}/hls/manifest.m3u8" and stored[-1] == f"{folder}/original.mp3"
    count = len(stored) - 2  # 180 s in segments of at most 10 s
    assert count > 18 and stored[1:-1] == [f"{folder}/hls/segment{n:03d}.ts" for n in range(count)]
    assert body["duration_seconds"] == pytest.approx(180.0, abs=0.05)
    assert body["bitrate_kbps"] == 128 and body["completed_at"] is not None

    source = await asyncio.to_thread(decode_duration, data)
    assert await hls_duration(body["hls_manifest_url"], headers) == pytest.approx(source, abs=0.1)


async def test_media_routes_send_hls_types_and_cache_headers(node: Any) -> None:
    _, headers = await user_headers(node)
    body = await ready_upload(node, headers, make_mp3(25.0))
    base = f"{UPLOADS}/{body['upload_id']}/hls"
    manifest = await node.get(f"{base}/manifest.m3u8", headers=headers)
    assert manifest.status == 200
    assert manifest.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    text = await manifest.text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    segments = re.findall(r"^segment\d+\.ts$", text, re.M)
    assert segments == ["segment000.ts", "segment001.ts", "segment002.ts"]
    segment = await node.get(f"{base}/{segments[0]}", headers=headers)
    assert segment.status == 200
    assert segment.headers["Content-Type"] == "video/mp2t"
    assert segment.headers["Cache-Control"] == "private, max-age=86400, immutable"
    assert (await segment.read())[0] == 0x47  # MPEG-TS sync byte
    missing = await node.get(f"{base}/segment099.ts", headers=headers)
    assert (missing.status, await missing.json()) == (404, {"error": "Not found", "code": 404})
    assert (await node.get(f"{base}/manifest.m3u8")).status == 401


async def test_the_manifest_url_answers_409_while_the_upload_is_processing(
    make_client: Any, database: str
) -> None:
    node = await make_client(database_url=database, job_workers=0)  # nothing processes it
    _, headers = await user_headers(node)
    created = await upload_mp3(node, headers, make_mp3(3.0))
    assert created["status"] == "processing"
    base = node.make_url(f"{UPLOADS}/{created['upload_id']}/hls")
    assert created["hls_manifest_url"] == f"{base}/manifest.m3u8"
    for url in (created["hls_manifest_url"], f"{base}/segment000.ts"):
        response = await node.session.get(url, headers=headers)
        assert (response.status, await response.json()) == (
            409,
            {"error": "Upload is still processing; retry in a few seconds", "code": 409},
        )
        assert response.headers["Retry-After"] == "5"


async def test_segments_past_999_keep_counting_and_play(make_client: Any, database: str) -> None:
    # 1 s segments of a long low-rate file (MPEG-2.5, 8 kHz: 13 frames of 72 ms each).
    node = await make_client(database_url=database, upload_hls_seconds=1)
    dj, headers = await user_headers(node)
    # 18 minutes: more than the default (basic) upload plan's 10, within pro's 30.
    plan = {"upload_plan": "pro"}
    admin = bearer(await make_admin(node))
    assert (await node.patch(f"/v1/users/{dj['user_id']}", json=plan, headers=admin)).ok
    tone = make_mp3(60.0, bitrate=8_000, sample_rate=8_000, channels=1)
    reader = TrackReader()
    frames = [f.data for f in reader.feed(tone) + reader.flush()]
    data = b"".join(frames * 18)  # 18 min of whole frames, no header
    body = await ready_upload(node, headers, data)
    text = await (await node.session.get(body["hls_manifest_url"], headers=headers)).text()
    names = re.findall(r"^segment\d+\.ts$", text, re.M)
    assert len(names) > 1000
    assert names[:2] == ["segment000.ts", "segment001.ts"]
    assert names[999:1001] == ["segment999.ts", "segment1000.ts"]
    base = f"{UPLOADS}/{body['upload_id']}/hls"
    for name in ("segment999.ts", "segment1000.ts", names[-1]):
        segment = await node.get(f"{base}/{name}", headers=headers)
        assert segment.status == 200, name
        assert (await segment.read())[0] == 0x47
    # Names outside the pattern are not routed at all (aiohttp's own 404, not JSON).
    assert (await node.get(f"{base}/segment00.ts", headers=headers)).status == 404


async def test_title_and_artist_come_from_the_form_then_id3_then_the_file_name(
    node: Any,
) -> None:
    _, headers = await user_headers(node)
    tagged = make_mp3(3.0, id3_title="Tagged Title")
    plain = make_mp3(3.0)
    named = await upload_mp3(node, headers, plain, filename="Sunset Groove.mp3")
    assert (named["title"], named["filename"]) == ("Sunset Groove", "Sunset Groove.mp3")
    # Text fields after the file part, and before it: both are read.
    after = await upload_mp3(node, headers, tagged, title="My Title", artist="DJ Example")
    before = await upload_mp3(node, headers, tagged, file_first=False, artist="DJ Example")
    assert (after["title"], after["artist"]) == ("My Title", "DJ Example")
    assert (before["title"], before["artist"]) == ("Tagged Title", "DJ Example")
    empty = await upload_mp3(node, headers, tagged, title="", artist="")  # an empty HTML input
    assert (empty["title"], empty["artist"]) == ("Tagged Title", None)
    too_long = await post_upload(node, headers, plain, title="x" * 201)
    assert await too_long.json() == {
        "error": "Field 'title' must be at most 200 characters long.",
        "code": 400,
        "details": ["Field 'title' must be at most 200 characters long."],
    }


async def test_a_file_that_is_not_mp3_is_refused_and_not_kept(node: Any, tmp_path: Path) -> None:
    _, headers = await user_headers(node)
    for data in (PNG, PNG * 40, b""):  # smaller and larger than the 64 KiB sniffing window
        response = await post_upload(node, headers, data, filename="song.mp3")
        assert response.status == 400
        body = await response.json()
        assert {k: body[k] for k in ("error", "code")} == UNSUPPORTED
    assert await keys(node.app[STORE]) == []
    assert leftovers(tmp_path / "data") == []
    listed = await (await node.get(UPLOADS, headers=headers)).json()
    assert listed["uploads"] == []


async def test_malformed_requests_say_what_to_send(node: Any) -> None:
    _, headers = await user_headers(node)
    mp3 = make_mp3(3.0)
    as_json = await node.post(UPLOADS, json={"file": "x"}, headers=headers)
    assert as_json.status == 400
    assert "multipart/form-data" in (await as_json.json())["error"]
    only_title = aiohttp.MultipartWriter("form-data")
    only_title.append("x").set_content_disposition("form-data", name="title")
    no_file = await node.post(UPLOADS, data=only_title, headers=headers)
    assert (await no_file.json())["error"] == (
        "No file uploaded: send the MP3 in a form field named 'file'."
    )
    extra = await post_upload(node, headers, mp3, genre="House")
    assert (await extra.json())["error"].startswith("Unexpected form field 'genre'")
    assert await keys(node.app[STORE]) == []
    _, listener = await user_headers(node, "listener")
    assert (await post_upload(node, listener, mp3)).status == 403  # no playlists:write
    assert (await post_upload(node, {}, mp3)).status == 401


async def then_stall(data: bytes, size: int) -> AsyncIterator[bytes]:
    """`data` in chunks of `size`, then a client that never finishes its upload."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
    await asyncio.Event().wait()


async def test_an_oversize_file_is_refused_while_it_arrives(
    make_client: Any, database: str, tmp_path: Path
) -> None:
    node = await make_client(database_url=database, upload_max_bytes=256 * 1024)
    _, headers = await user_headers(node)
    big = make_mp3(60.0)  # ~960 KB
    expected = {"error": "File is larger than the 256 KB limit.", "code": 413}
    # With a Content-Length: refused before the body is read.
    response = await post_upload(node, headers, big)
    assert (response.status, await response.json()) == (413, expected)
    # Chunked, no length announced: refused as the 256 KiB mark is crossed, while the
    # client is still sending (it never finishes here).
    response = await asyncio.wait_for(post_upload(node, headers, then_stall(big, 16 * 1024)), 10)
    assert (response.status, await response.json()) == (413, expected)
    response.close()
    assert await keys(node.app[STORE]) == []
    assert leftovers(tmp_path / "data") == []
    small = await upload_mp3(node, headers, make_mp3(10.0))  # ~160 KB: accepted
    assert small["size_bytes"] < 256 * 1024


async def until(check: Any, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.02)


async def test_an_upload_the_client_abandons_leaves_nothing(node: Any, tmp_path: Path) -> None:
    _, headers = await user_headers(node)
    data = make_mp3(60.0)
    boundary = "x-boundary"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
        "Content-Type: audio/mpeg\r\n\r\n"
    ).encode()
    _, writer = await asyncio.open_connection(node.host, node.port)
    writer.write(
        f"POST {UPLOADS} HTTP/1.1\r\nHost: {node.host}\r\n"
        f"Authorization: {headers['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(part) + len(data) + 64}\r\n\r\n".encode()
        + part
        + data[: len(data) // 2]
    )
    await writer.drain()
    await until(lambda: leftovers(tmp_path / "data") != [])  # the store is writing it
    writer.close()  # the client goes away mid-file
    await until(lambda: leftovers(tmp_path / "data") == [])
    assert await keys(node.app[STORE]) == []


async def test_a_truncated_mp3_is_accepted_then_fails_with_the_reason(node: Any) -> None:
    _, headers = await user_headers(node)
    whole = make_mp3(20.0)
    created = await upload_mp3(node, headers, whole[: len(whole) // 2], filename="cut.mp3")
    body = await wait_processed(node, headers, created["upload_id"])
    assert body["status"] == "failed"
    assert re.fullmatch(
        r"Transcoding error: the file is truncated after 1\d\.\d s\.", body["error_message"]
    ), body["error_message"]
    assert body["completed_at"] is not None
    response = await node.session.get(body["hls_manifest_url"], headers=headers)
    assert (response.status, await response.json()) == (
        409,
        {"error": f"Upload could not be processed: {body['error_message']}", "code": 409},
    )
    # Retrying cannot mend a file: the job failed at its first attempt.
    assert (await job_row(node, created["upload_id"]))["attempts"] == 1


async def test_a_cut_off_cbr_file_without_a_header_fails_too(node: Any) -> None:
    # No Xing/Info frame announces the length; the file ends inside its last frame.
    _, headers = await user_headers(node)
    reader = TrackReader()
    frames = reader.feed(make_mp3(20.0)) + reader.flush()  # the Info frame left out
    data = b"".join(f.data for f in frames)
    created = await upload_mp3(node, headers, data[: len(data) // 2], filename="cut.mp3")
    body = await wait_processed(node, headers, created["upload_id"])
    assert (body["status"], body["duration_seconds"]) == ("failed", None)
    assert re.fullmatch(
        r"Transcoding error: the file is truncated after (9\.9|10\.0) s\.", body["error_message"]
    ), body["error_message"]
    assert (await job_row(node, created["upload_id"]))["attempts"] == 1
    # The same audio cut between two frames is a shorter file, and plays.
    whole = b"".join(f.data for f in frames[: len(frames) // 2])
    ready = await ready_upload(node, headers, whole)
    assert ready["duration_seconds"] == pytest.approx(len(frames) // 2 * 1152 / 44_100)


async def test_an_upload_is_its_owners_alone(node: Any) -> None:
    _, owner = await user_headers(node)
    _, other = await user_headers(node)
    _, admin = await user_headers(node, "admin")
    body = await ready_upload(node, owner, make_mp3(3.0))
    path = f"{UPLOADS}/{body['upload_id']}"
    for method, url in [
        ("GET", path),
        ("DELETE", path),
        ("GET", f"{path}/hls/manifest.m3u8"),
        ("GET", f"{path}/hls/segment000.ts"),
    ]:
        response = await node.request(method, url, headers=other)
        assert (response.status, await response.json()) == (
            404,
            {"error": "Upload not found", "code": 404},
        ), (method, url)
    assert (await node.get(path, headers=admin)).status == 200
    assert (await node.get(f"{UPLOADS}/not-a-uuid", headers=owner)).status == 404
    mine = await (await node.get(UPLOADS, headers=other)).json()
    assert mine["total"] == 0


async def test_my_uploads_are_listed_newest_first_a_page_at_a_time(node: Any) -> None:
    _, headers = await user_headers(node)
    empty = await (await node.get(UPLOADS, headers=headers)).json()
    assert empty == {
        "uploads": [],
        "page": 1,
        "per_page": 20,
        "total": 0,
        "message": "You have not uploaded any audio yet. Use POST /v1/uploads/audio to add an MP3.",
    }
    ids = [
        (await upload_mp3(node, headers, make_mp3(2.0), title=f"Track {n}"))["upload_id"]
        for n in range(3)
    ]
    first = await (await node.get(UPLOADS, params={"per_page": 2}, headers=headers)).json()
    second = await (
        await node.get(UPLOADS, params={"per_page": 2, "page": 2}, headers=headers)
    ).json()
    assert [u["upload_id"] for u in first["uploads"] + second["uploads"]] == ids[::-1]
    assert (first["total"], first["message"], second["page"]) == (3, None, 2)
    bad = await node.get(UPLOADS, params={"per_page": 0}, headers=headers)
    assert bad.status == 400


async def test_deleting_an_upload_removes_its_media(node: Any) -> None:
    user, headers = await user_headers(node)
    body = await ready_upload(node, headers, make_mp3(12.0))
    upload_id = body["upload_id"]
    store = node.app[STORE]
    folder = f"uploads/audio/{user['user_id']}/{upload_id}/"
    assert len(await keys(store, folder)) == 4  # original, 2 segments, manifest

    async def used_by(candidate: uuid.UUID) -> str | None:
        return "playlist 'Friday Mix'" if str(candidate) == upload_id else None

    node.app[UPLOADS_SERVICE].register_usage_check(used_by)
    refused = await node.delete(f"{UPLOADS}/{upload_id}", headers=headers)
    assert (refused.status, await refused.json()) == (
        409,
        {
            "error": "This upload is used by a playlist or episode; "
            "pass ?force=true to delete it anyway.",
            "code": 409,
            "details": ["playlist 'Friday Mix'"],
        },
    )
    deleted = await node.delete(f"{UPLOADS}/{upload_id}?force=true", headers=headers)
    assert deleted.status == 204
    assert await keys(store, folder) == []
    assert (await node.get(f"{UPLOADS}/{upload_id}", headers=headers)).status == 404
    assert (await node.delete(f"{UPLOADS}/{upload_id}", headers=headers)).status == 404
    assert (await (await node.get(UPLOADS, headers=headers)).json())["total"] == 0


async def test_health_reports_the_object_store(make_client: Any, database: str) -> None:
    healthy = await make_client(database_url=database)
    assert (await healthy.get("/v1/health")).status == 200
    broken = await make_client(
        database_url=database,
        storage_url="s3://no-such-bucket/x",
        s3_endpoint_url="http://127.0.0.1:9",  # nothing listens on the discard port
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    response = await broken.get("/v1/health")
    assert response.status == 503
    assert (await response.json())["failing"] == ["storage"]
