"""`S3Store` against a real S3-protocol server on loopback (moto's standalone server, run as a
subprocess by the `s3_endpoint` fixture of `tests/s3.py`): the shared `ObjectStoreContract`,
plus multipart uploads and presigned URLs. Server state is checked with a second, ordinary
client."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiobotocore.session import AioSession

from mediaserver.storage import ObjectNotFound, StoreError, open_store
from mediaserver.storage.s3 import MAX_PARTS_IN_FLIGHT, PART_SIZE, S3Store
from tests.s3 import BUCKET, KEYS, s3_client
from tests.unit.mediaserver.storage.test_filesystem import (
    Boom,
    ObjectStoreContract,
    chunked,
    collect,
    failing,
    generated,
    pattern,
    put_then_cancel,
)

pytest.importorskip("moto.server", reason="moto[server] provides the S3-protocol server")

MiB = 1024 * 1024


@pytest.fixture
async def s3(aio_session: AioSession, s3_endpoint: str) -> AsyncIterator[Any]:
    """A plain client to look at the server's state (not the store's client)."""
    async with s3_client(aio_session, s3_endpoint) as client:
        yield client


def make_store(
    aio_session: AioSession, endpoint: str, cls: type[S3Store] = S3Store, bucket: str = BUCKET
) -> S3Store:
    # A fresh prefix per test keeps tests independent on the one shared bucket.
    prefix = f"t-{uuid.uuid4().hex[:12]}/objects"
    return cls(bucket, prefix, endpoint, "us-east-1", session=aio_session, **KEYS)


async def pending_uploads(s3: Any, store: S3Store) -> list[dict[str, Any]]:
    result = await s3.list_multipart_uploads(Bucket=BUCKET, Prefix=store.prefix)
    uploads: list[dict[str, Any]] = result.get("Uploads", [])
    return uploads


async def test_sweep_aborts_multipart_uploads_a_killed_node_left(
    aio_session: AioSession, s3_endpoint: str, s3: Any
) -> None:
    async with make_store(aio_session, s3_endpoint) as store:
        key = f"{store.prefix}/uploads/audio/u/a/original.mp3"
        started = await s3.create_multipart_upload(Bucket=BUCKET, Key=key)
        await s3.upload_part(
            Bucket=BUCKET, Key=key, UploadId=started["UploadId"], PartNumber=1, Body=b"x" * 1024
        )
        # (moto dates every multipart upload 2010-11-10, so "younger than the cutoff
        # stays" is only checked against the filesystem store.)
        assert await store.sweep(datetime.now(UTC) - timedelta(hours=1)) == 1
        assert await pending_uploads(s3, store) == []


class CountingS3Store(S3Store):
    """Spies on the part boundary: how many parts, and how many were in flight at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parts: list[int] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._peak_reached = asyncio.Event()

    async def _upload_part(self, full: str, upload_id: str, number: int, data: bytes) -> Any:
        self.parts.append(len(data))
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if self.in_flight >= MAX_PARTS_IN_FLIGHT:
            self._peak_reached.set()
        try:
            # Hold each part until the store has as many in flight as it allows (or a
            # moment has passed), so the peak does not depend on how busy the machine is.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._peak_reached.wait()
            return await super()._upload_part(full, upload_id, number, data)
        finally:
            self.in_flight -= 1


class TestS3Store(ObjectStoreContract):
    @pytest.fixture
    async def store(self, aio_session: AioSession, s3_endpoint: str) -> AsyncIterator[S3Store]:
        async with make_store(aio_session, s3_endpoint) as store:
            yield store

    async def test_a_20_mb_put_goes_through_multipart(
        self, aio_session: AioSession, s3_endpoint: str, s3: Any
    ) -> None:
        data = pattern(20 * MiB + 7)
        async with make_store(aio_session, s3_endpoint, CountingS3Store) as store:
            assert isinstance(store, CountingS3Store)
            # An odd chunk size, so parts straddle chunks.
            info = await store.put("uploads/big.mp3", chunked(data, 1_000_003), "audio/mpeg")
            assert store.parts == [PART_SIZE, PART_SIZE, len(data) - 2 * PART_SIZE]
            head = await s3.head_object(Bucket=BUCKET, Key=f"{store.prefix}/uploads/big.mp3")
            assert head["ContentLength"] == len(data) == info.size
            assert head["ContentType"] == "audio/mpeg"
            assert head["ETag"].strip('"') == info.etag
            assert info.etag.endswith("-3")  # S3's multipart ETag: md5 of part md5s, "-parts"
            assert await pending_uploads(s3, store) == []
            assert await collect(await store.get("uploads/big.mp3")) == data
            assert (
                await collect(
                    await store.get_range("uploads/big.mp3", PART_SIZE - 2, PART_SIZE + 1)
                )
                == (data[PART_SIZE - 2 : PART_SIZE + 2])
            )

    async def test_multipart_keeps_at_most_four_parts_in_flight(
        self, aio_session: AioSession, s3_endpoint: str
    ) -> None:
        async with make_store(aio_session, s3_endpoint, CountingS3Store) as store:
            assert isinstance(store, CountingS3Store)
            info = await store.put("uploads/long.mp3", generated(5 * PART_SIZE + 1))
            assert len(store.parts) == 6
            assert store.peak_in_flight == MAX_PARTS_IN_FLIGHT
            assert (await store.head("uploads/long.mp3")).size == info.size

    async def test_failed_multipart_put_is_aborted(
        self, aio_session: AioSession, s3_endpoint: str, s3: Any
    ) -> None:
        async with make_store(aio_session, s3_endpoint, CountingS3Store) as store:
            assert isinstance(store, CountingS3Store)
            with pytest.raises(Boom):
                await store.put("uploads/over.mp3", failing(20 * MiB))
            assert len(store.parts) == 2  # two parts were in flight when the iterator failed
            with pytest.raises(ObjectNotFound):
                await store.head("uploads/over.mp3")
            assert await pending_uploads(s3, store) == []

    async def test_cancelled_multipart_put_is_aborted(
        self, aio_session: AioSession, s3_endpoint: str, s3: Any
    ) -> None:
        async with make_store(aio_session, s3_endpoint) as store:
            await put_then_cancel(store, "uploads/gone.mp3", 20 * MiB)
            with pytest.raises(ObjectNotFound):
                await store.head("uploads/gone.mp3")
            assert await pending_uploads(s3, store) == []
            assert [info async for info in store.list()] == []

    async def test_presigned_url_downloads_with_a_plain_http_client(self, store: S3Store) -> None:
        data = pattern(300_000)
        await store.put_bytes("hls/p1/seg_00001.ts", data, "video/mp2t")
        url = await store.presigned_url("hls/p1/seg_00001.ts", expires_seconds=60)
        assert url is not None
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "video/mp2t"
                assert await response.read() == data
            async with http.get(url, headers={"Range": "bytes=10-19"}) as response:
                assert response.status == 206
                assert await response.read() == data[10:20]

    async def test_storage_urls_name_bucket_and_prefix(self, store: S3Store) -> None:
        assert store.storage_url_for("uploads/u1/x.ts") == (
            f"s3://{BUCKET}/{store.prefix}/uploads/u1/x.ts"
        )
        assert store.url == f"s3://{BUCKET}/{store.prefix}"

    async def test_delete_prefix_deletes_in_batches_of_1000(self, store: S3Store) -> None:
        keys = [f"many/{n:04d}" for n in range(1005)]
        for start in range(0, len(keys), 100):
            await asyncio.gather(*(store.put_bytes(key, b"") for key in keys[start : start + 100]))
        await store.put_bytes("other/keep", b"")
        assert len([info async for info in store.list("many/")]) == 1005  # > one list page
        await store.delete_prefix("many/")
        assert [info.key async for info in store.list()] == ["other/keep"]


async def test_a_missing_bucket_is_a_store_error_not_a_404(
    aio_session: AioSession, s3_endpoint: str
) -> None:
    async with make_store(aio_session, s3_endpoint, bucket="no-such-bucket") as store:
        with pytest.raises(StoreError) as raised:
            await store.get("x")
        assert not isinstance(raised.value, ObjectNotFound)
        with pytest.raises(StoreError):
            await store.put_bytes("x", b"x")


async def test_open_store_opens_the_s3_backend(s3_endpoint: str) -> None:
    store = await open_store(f"s3://{BUCKET}/via-url/", s3_endpoint_url=s3_endpoint, **KEYS)
    try:
        assert isinstance(store, S3Store)
        await store.put_bytes("k", b"v")
        assert await store.read("k") == b"v"
        assert store.storage_url_for("k") == f"s3://{BUCKET}/via-url/k"
    finally:
        await store.delete_prefix("k")
        await store.close()
