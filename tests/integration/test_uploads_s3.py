"""The upload flow end to end with `STORAGE_URL=s3://bucket/prefix`, on moto's S3 server on
loopback: the source and the HLS rendition land in the bucket, play over HTTP through the
node, and go away with the upload; an upload refused mid-way (over the limit) leaves neither
an object nor a pending multipart upload."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.session import AioSession

from mediaserver.storage.s3 import PART_SIZE
from tests.accounts import user_headers
from tests.audio import decode_duration, make_mp3
from tests.s3 import BUCKET, KEYS, s3_client
from tests.streams import fresh_database
from tests.uploads import UPLOADS, post_upload, ready_upload

MiB = 1024 * 1024


async def start_s3_node(
    make_client: Any, make_database: Any, s3_endpoint: str, max_bytes: int
) -> tuple[Any, str]:
    """A node storing under a fresh prefix of the test bucket; the node and the prefix."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    node = await make_client(
        database_url=await fresh_database(make_database),
        storage_url=f"s3://{BUCKET}/{prefix}",
        s3_endpoint_url=s3_endpoint,
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
        upload_max_bytes=max_bytes,
    )
    return node, prefix


@pytest.fixture
async def s3_node(make_client: Any, make_database: Any, s3_endpoint: str) -> tuple[Any, str]:
    return await start_s3_node(make_client, make_database, s3_endpoint, MiB)


async def pending_uploads(session: AioSession, endpoint: str, prefix: str) -> list[str]:
    """Keys of the multipart uploads begun and neither completed nor aborted."""
    async with s3_client(session, endpoint) as s3:
        listed = await s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Uploads", [])]


async def bucket_keys(session: AioSession, endpoint: str, prefix: str) -> list[str]:
    async with s3_client(session, endpoint) as s3:
        listed = await s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        uploads = await s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    assert uploads.get("Uploads", []) == []  # no abandoned multipart upload either
    return sorted(item["Key"] for item in listed.get("Contents", []))


async def test_an_upload_on_s3_becomes_hls_that_plays_and_is_deleted(
    s3_node: tuple[Any, str], aio_session: AioSession, s3_endpoint: str
) -> None:
    node, prefix = s3_node
    user, headers = await user_headers(node)
    data = make_mp3(25.0, id3_title="On S3")  # 3 segments of at most 10 s
    body = await ready_upload(node, headers, data)
    upload_id = body["upload_id"]
    assert body["title"] == "On S3"
    # The backlog's layout: uploads/audio/{user_id}/{upload_id}/original.mp3 and hls/.
    base = f"{prefix}/uploads/audio/{user['user_id']}/{upload_id}"
    assert body["storage_url"] == f"s3://{BUCKET}/{base}/original.mp3"
    assert await bucket_keys(aio_session, s3_endpoint, base) == [
        f"{base}/hls/manifest.m3u8",
        *(f"{base}/hls/segment{n:03d}.ts" for n in range(3)),
        f"{base}/original.mp3",
    ]
    options = {"headers": f"Authorization: {headers['Authorization']}\r\n"}
    played = await asyncio.to_thread(decode_duration, body["hls_manifest_url"], options=options)
    source = await asyncio.to_thread(decode_duration, data)
    assert played == pytest.approx(source, abs=0.1)

    deleted = await node.delete(f"{UPLOADS}/{upload_id}", headers=headers)
    assert deleted.status == 204
    assert await bucket_keys(aio_session, s3_endpoint, base) == []


async def test_an_oversize_upload_leaves_nothing_in_the_bucket(
    s3_node: tuple[Any, str], aio_session: AioSession, s3_endpoint: str
) -> None:
    node, prefix = s3_node
    _, headers = await user_headers(node)

    async def chunked(data: bytes) -> Any:
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    response = await post_upload(node, headers, chunked(make_mp3(25.0) * 4))  # ~1.6 MB
    assert (response.status, await response.json()) == (
        413,
        {"error": "File is larger than the 1 MB limit.", "code": 413},
    )
    assert await bucket_keys(aio_session, s3_endpoint, prefix) == []


async def test_an_upload_refused_after_its_first_part_aborts_the_multipart_upload(
    make_client: Any, make_database: Any, aio_session: AioSession, s3_endpoint: str
) -> None:
    # A limit above the 8 MiB part size: the refusal comes while a multipart upload is open.
    limit = PART_SIZE + 2 * MiB
    node, prefix = await start_s3_node(make_client, make_database, s3_endpoint, limit)
    _, headers = await user_headers(node)
    song = make_mp3(25.0)
    data = song * (limit // len(song) + 2)  # whole MP3s back to back, over the limit
    first = PART_SIZE + MiB  # sent, then the client pauses until the multipart upload shows
    resume = asyncio.Event()

    async def paused() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            if start == first:
                await resume.wait()
            yield data[start : start + 64 * 1024]

    posting = asyncio.create_task(post_upload(node, headers, paused()))
    try:
        deadline = time.monotonic() + 30
        while not await pending_uploads(aio_session, s3_endpoint, prefix):
            assert time.monotonic() < deadline, "no multipart upload was begun"
            assert not posting.done(), await posting
            await asyncio.sleep(0.05)
        resume.set()
        response = await asyncio.wait_for(posting, 30)
    finally:
        resume.set()
        if not posting.done():
            posting.cancel()
    assert (response.status, await response.json()) == (
        413,
        {"error": "File is larger than the 10 MB limit.", "code": 413},
    )
    assert await pending_uploads(aio_session, s3_endpoint, prefix) == []
    assert await bucket_keys(aio_session, s3_endpoint, prefix) == []
    listed = await (await node.get(UPLOADS, headers=headers)).json()
    assert listed["total"] == 0
