"""Object store: one async interface for media objects, on the filesystem or on S3.

Keys are built by the server from generated ids (`uploads/<id>/seg_00001.ts`); they are still
validated here (`validate_key`) so a bug upstream cannot become a path traversal. `open_store`
picks the backend from `STORAGE_URL`: `file:///abs/path` → `FileStore`, `s3://bucket/prefix`
→ `S3Store` (in `hls/s3store.py`).

Reads are streams: `await store.get(key)` raises `ObjectNotFound` *before* the first byte, so an
HTTP handler can answer 404 before it starts a response, then yields chunks. Exhaust the
stream or `aclose()` it (`contextlib.aclosing`) to release the file or connection promptly.
"""

from __future__ import annotations

import abc
import builtins
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

CHUNK_SIZE = 1 << 20
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_KEY_LENGTH = 1024  # S3's limit, in bytes; keys are ASCII here
META_SUFFIX = ".meta.json"
TMP_PREFIX = ".tmp-"

_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_T = TypeVar("_T")


class StoreError(Exception):
    """The backend failed (I/O error, S3 error, misconfiguration)."""


class ObjectNotFound(StoreError):
    """No object under `key`."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object not found: {key}")
        self.key = key


class RangeNotSatisfiable(StoreError):
    """`get_range` started at or past the end of the object (HTTP 416)."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a backend knows about one object. `content_type` is None in listings from S3."""

    key: str
    size: int
    etag: str
    last_modified: datetime | None = None
    content_type: str | None = None


def validate_key(key: str) -> str:
    """Return `key` if it is a safe object key, else raise ValueError.

    Segments of `[A-Za-z0-9._-]` joined by `/`; no leading `/`, no empty, `.` or `..`
    segment; `.tmp-*` segments and a `.meta.json` suffix are reserved for `FileStore`.
    """
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"invalid object key: {key!r}")
    for segment in key.split("/"):
        if (
            not _SEGMENT.fullmatch(segment)
            or segment in (".", "..")
            or segment.startswith(TMP_PREFIX)
        ):
            raise ValueError(f"invalid object key: {key!r}")
    if key.endswith(META_SUFFIX):
        raise ValueError(f"invalid object key (reserved suffix): {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: `""`, or a key-like string that may end with `/`."""
    if prefix != "":
        validate_key(prefix.removesuffix("/"))
    return prefix


class ObjectStore(abc.ABC):
    """The async object-store interface the server codes against."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources (clients, directories); `open_store` calls it."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what `open` acquired."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """Where the store lives, for logs: `file:///…` or `s3://bucket/prefix`."""

    @abc.abstractmethod
    def storage_url_for(self, key: str) -> str:
        """The object's location for API responses: `file:///…` or `s3://bucket/prefix/key`."""

    @abc.abstractmethod
    async def put(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> ObjectInfo:
        """Store the bytes `chunks` yields under `key`, replacing any object there.

        All or nothing: if `chunks` raises or the call is cancelled, nothing new appears under
        `key` and no partial data is left behind. The exception propagates unchanged.
        """

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        """`put` for data already in memory (playlists, small metadata)."""

        async def once() -> AsyncIterator[bytes]:
            yield data

        return await self.put(key, once(), content_type)

    @abc.abstractmethod
    async def get(self, key: str) -> AsyncGenerator[bytes, None]:
        """The object's bytes in chunks; raises `ObjectNotFound` before the first chunk."""

    @abc.abstractmethod
    async def get_range(
        self, key: str, start: int, end_inclusive: int
    ) -> AsyncGenerator[bytes, None]:
        """Bytes `start..end_inclusive` (clamped to the object's end), like HTTP `Range`.

        Raises `ObjectNotFound`, or `RangeNotSatisfiable` when `start >= size`.
        """

    async def read(self, key: str, *, max_size: int = 16 * CHUNK_SIZE) -> bytes:
        """The whole object, for small objects only; over `max_size` raises StoreError."""
        parts: builtins.list[bytes] = []
        total = 0
        async with contextlib.aclosing(await self.get(key)) as stream:
            async for chunk in stream:
                total += len(chunk)
                if total > max_size:
                    raise StoreError(f"object {key} is larger than {max_size} bytes")
                parts.append(chunk)
        return b"".join(parts)

    @abc.abstractmethod
    async def head(self, key: str) -> ObjectInfo:
        """Size, etag, content type and modification time; raises `ObjectNotFound`."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error."""

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose key starts with `prefix` (which must not be empty)."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with `prefix` (a plain string prefix, as on S3), in key
        order: `async for info in store.list("uploads/42/")`."""

    @abc.abstractmethod
    async def presigned_url(self, key: str, expires_seconds: int = 3600) -> str | None:
        """A time-limited GET URL, or None when the backend has none (filesystem)."""


def check_range(start: int, end_inclusive: int) -> None:
    if start < 0 or end_inclusive < start:
        raise ValueError(f"invalid byte range {start}-{end_inclusive}")


async def primed(stream: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    """Run a chunk generator up to its first (empty) yield, so a missing object raises here,
    and the generator's `finally` runs on `aclose()` even if the caller never iterates."""
    await anext(stream)
    return stream


async def open_store(
    storage_url: str,
    *,
    s3_endpoint_url: str | None = None,
    region: str = "us-east-1",
    access_key: str | None = None,
    secret_key: str | None = None,
) -> ObjectStore:
    """The opened backend `storage_url` names: `file:///abs/path` or `s3://bucket/prefix`."""
    parts = urlsplit(storage_url)
    store: ObjectStore
    if parts.scheme == "file":
        path = Path(url2pathname(parts.path))
        if parts.netloc not in ("", "localhost") or not path.is_absolute():
            raise ValueError(f"file storage URL must be file:///absolute/path: {storage_url}")
        from hls.filestore import FileStore

        store = FileStore(path)
    elif parts.scheme == "s3":
        from hls.s3store import S3Store  # imports aiobotocore only when S3 is used

        if not parts.netloc:
            raise ValueError(f"s3 storage URL must name a bucket: {storage_url}")
        store = S3Store(
            parts.netloc, parts.path.strip("/"), s3_endpoint_url, region, access_key, secret_key
        )
    else:
        raise ValueError(f"unsupported storage URL: {storage_url}")
    await store.open()
    return store
