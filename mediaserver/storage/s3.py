"""`S3Store`: the object store on S3 or an S3-compatible server, through aiobotocore.

One client per store, created in `open()` and closed in `close()`. Objects over `PART_SIZE`
are sent as a multipart upload with at most `MAX_PARTS_IN_FLIGHT` parts in flight (so memory
stays under ~5 parts whatever the object size); a failed or cancelled upload is aborted so
the bucket keeps no orphaned parts.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack, aclosing
from datetime import UTC, datetime
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from mediaserver.storage.store import (
    CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    RangeNotSatisfiable,
    StoreError,
    check_range,
    primed,
    validate_key,
    validate_prefix,
)

log = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024  # S3 needs ≥ 5 MiB for every part but the last
MAX_PARTS_IN_FLIGHT = 4
DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 limit

_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}

Part = dict[str, Any]


class S3Store(ObjectStore):
    """Objects under `prefix` in `bucket`. `endpoint_url` selects an S3-compatible server
    (MinIO, moto, R2…), which is addressed path-style; None means AWS. Pass `session` to
    share one botocore session (and its parsed service models) between stores."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        session: AioSession | None = None,
    ) -> None:
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self._root = f"{prefix}/" if prefix else ""
        self._endpoint_url = endpoint_url
        self._region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._session = session
        self._stack = AsyncExitStack()
        self._client: Any = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def storage_url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def _full(self, key: str) -> str:
        return self._root + validate_key(key)

    async def open(self) -> None:
        custom = self._endpoint_url is not None
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"} if custom else {},
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=32,
            warm_up_loader_caches=True,  # load the service model off the event loop
            # S3-compatible servers often reject botocore's default CRC checksums.
            request_checksum_calculation="when_required" if custom else "when_supported",
            response_checksum_validation="when_required" if custom else "when_supported",
        )
        self._client = await self._stack.enter_async_context(
            (self._session or get_session()).create_client(
                "s3",
                region_name=self._region,
                endpoint_url=self._endpoint_url,
                aws_access_key_id=self._access_key,
                aws_secret_access_key=self._secret_key,
                config=config,
            )
        )

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()

    async def _call(self, operation: str, key: str, **params: Any) -> dict[str, Any]:
        """One S3 request; botocore errors become the store's exceptions."""
        if self._client is None:
            raise StoreError("S3Store is not open")
        try:
            result: dict[str, Any] = await getattr(self._client, operation)(
                Bucket=self.bucket, **params
            )
        except ClientError as exc:
            raise _translate(exc, operation, key) from exc
        except BotoCoreError as exc:
            raise StoreError(f"S3 {operation} {key}: {exc}") from exc
        return result

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> ObjectInfo:
        full = self._full(key)
        ctype = content_type or DEFAULT_CONTENT_TYPE
        buffer = bytearray()
        iterator = aiter(chunks)
        async for chunk in iterator:
            buffer += chunk
            if len(buffer) > PART_SIZE:
                return await self._put_multipart(key, full, ctype, buffer, iterator)
        result = await self._call(
            "put_object", key, Key=full, Body=bytes(buffer), ContentType=ctype
        )
        return ObjectInfo(key, len(buffer), _etag(result), None, ctype)

    async def _put_multipart(
        self,
        key: str,
        full: str,
        ctype: str,
        buffer: bytearray,
        chunks: AsyncIterator[bytes],
    ) -> ObjectInfo:
        created = await self._call("create_multipart_upload", key, Key=full, ContentType=ctype)
        upload_id = created["UploadId"]
        tasks: set[asyncio.Task[Part]] = set()
        parts: builtins.list[Part] = []
        size = 0
        try:
            async with aclosing(_parts(buffer, chunks)) as numbered:
                async for number, data in numbered:
                    size += len(data)
                    if len(tasks) >= MAX_PARTS_IN_FLIGHT:
                        done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                        parts += _results(done)
                    upload = self._upload_part(full, upload_id, number, data)
                    tasks.add(asyncio.create_task(upload))
            while tasks:
                done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                parts += _results(done)
            parts.sort(key=lambda part: int(part["PartNumber"]))
            result = await self._call(
                "complete_multipart_upload",
                key,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._abort(key, full, upload_id)
            raise
        return ObjectInfo(key, size, _etag(result), None, ctype)

    async def _upload_part(self, full: str, upload_id: str, number: int, data: bytes) -> Part:
        result = await self._call(
            "upload_part", full, Key=full, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": result["ETag"]}

    async def _abort(self, key: str, full: str, upload_id: str) -> None:
        try:
            await self._call("abort_multipart_upload", key, Key=full, UploadId=upload_id)
        except StoreError:
            # Keep the original error; a bucket lifecycle rule is the backstop for this.
            log.warning("could not abort multipart upload %s of %s", upload_id, full)

    async def get(self, key: str) -> AsyncGenerator[bytes, None]:
        return await primed(self._chunks(key, Key=self._full(key)))

    async def get_range(
        self, key: str, start: int, end_inclusive: int
    ) -> AsyncGenerator[bytes, None]:
        check_range(start, end_inclusive)
        byte_range = f"bytes={start}-{end_inclusive}"
        return await primed(self._chunks(key, Key=self._full(key), Range=byte_range))

    async def _chunks(self, key: str, **params: Any) -> AsyncGenerator[bytes, None]:
        result = await self._call("get_object", key, **params)
        body = result["Body"]
        try:
            yield b""  # primed: the object exists
            async for chunk in body.iter_chunks(CHUNK_SIZE):
                yield chunk
        except BotoCoreError as exc:
            raise StoreError(f"S3 get_object {key}: {exc}") from exc
        finally:
            body.close()

    async def head(self, key: str) -> ObjectInfo:
        result = await self._call("head_object", key, Key=self._full(key))
        return ObjectInfo(
            key,
            result["ContentLength"],
            _etag(result),
            _utc(result.get("LastModified")),
            result.get("ContentType"),
        )

    async def delete(self, key: str) -> None:
        await self._call("delete_object", key, Key=self._full(key))

    async def delete_prefix(self, prefix: str) -> None:
        if not validate_prefix(prefix):
            raise ValueError("delete_prefix needs a non-empty prefix")
        batch: builtins.list[dict[str, str]] = []
        async for info in self.list(prefix):
            batch.append({"Key": self._root + info.key})
            if len(batch) == DELETE_BATCH:
                await self._delete_batch(prefix, batch)
                batch = []
        if batch:
            await self._delete_batch(prefix, batch)

    async def _delete_batch(self, prefix: str, batch: builtins.list[dict[str, str]]) -> None:
        result = await self._call(
            "delete_objects", prefix, Delete={"Objects": batch, "Quiet": True}
        )
        if errors := result.get("Errors"):
            first = errors[0]
            raise StoreError(
                f"S3 delete_objects {prefix}: {len(errors)} failed, "
                f"first {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
            )

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        if self._client is None:
            raise StoreError("S3Store is not open")
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._root + prefix
        )
        try:
            async for page in pages:
                for item in page.get("Contents", ()):
                    yield ObjectInfo(
                        item["Key"][len(self._root) :],
                        item["Size"],
                        _etag(item),
                        _utc(item.get("LastModified")),
                    )
        except ClientError as exc:
            raise _translate(exc, "list_objects_v2", prefix) from exc
        except BotoCoreError as exc:
            raise StoreError(f"S3 list_objects_v2 {prefix}: {exc}") from exc

    async def sweep(self, older_than: datetime) -> int:
        """Abort the multipart uploads under the prefix begun before `older_than`: a node
        killed mid-upload leaves its parts stored (and billed) but invisible to listings.
        S3 has no directories to prune."""
        if self._client is None:
            raise StoreError("S3Store is not open")
        stale: builtins.list[tuple[str, str]] = []
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self._root
        )
        try:
            async for page in pages:
                for upload in page.get("Uploads", ()):
                    initiated = _utc(upload.get("Initiated"))
                    if initiated is not None and initiated < older_than:
                        stale.append((upload["Key"], upload["UploadId"]))
        except ClientError as exc:
            raise _translate(exc, "list_multipart_uploads", self._root) from exc
        except BotoCoreError as exc:
            raise StoreError(f"S3 list_multipart_uploads {self._root}: {exc}") from exc
        for full, upload_id in stale:
            await self._abort(full[len(self._root) :], full, upload_id)
        return len(stale)

    async def presigned_url(self, key: str, expires_seconds: int = 3600) -> str | None:
        if not 1 <= expires_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_seconds must be 1..{MAX_PRESIGN_SECONDS}")
        if self._client is None:
            raise StoreError("S3Store is not open")
        url: str = await self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._full(key)},
            ExpiresIn=expires_seconds,
        )
        return url


async def _parts(
    buffer: bytearray, chunks: AsyncIterator[bytes]
) -> AsyncGenerator[tuple[int, bytes], None]:
    """(part number, PART_SIZE bytes) from what is buffered, then from `chunks`; the last
    part carries the remainder."""
    number = 0
    while True:
        while len(buffer) >= PART_SIZE:
            number += 1
            yield number, bytes(buffer[:PART_SIZE])
            del buffer[:PART_SIZE]
        chunk = await anext(chunks, None)
        if chunk is None:
            break
        buffer += chunk
    if buffer:
        yield number + 1, bytes(buffer)


def _results(done: set[asyncio.Task[Part]]) -> builtins.list[Part]:
    """Results of finished part uploads; raises the first failure (all are retrieved)."""
    errors = [exc for task in done if (exc := task.exception()) is not None]
    if errors:
        raise errors[0]
    return [task.result() for task in done]


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def _etag(result: dict[str, Any]) -> str:
    return str(result.get("ETag", "")).strip('"')


def _translate(exc: ClientError, operation: str, key: str) -> StoreError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code in _NOT_FOUND:
        return ObjectNotFound(key)
    if code == "InvalidRange":
        return RangeNotSatisfiable(f"{key}: {error.get('Message', code)}")
    return StoreError(f"S3 {operation} {key}: {code} {error.get('Message', '')}".rstrip())
