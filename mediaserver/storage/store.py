"""Object store: one async interface for media objects, on the filesystem or on S3.

Keys are built by the server from generated ids (`uploads/audio/<user>/<id>/original.mp3`);
they are still validated here (`validate_key`) so a bug upstream cannot become a path
traversal. `open_store` picks the backend from `STORAGE_URL`: `file:///abs/path` →
`FileStore` (in `mediaserver/storage/filesystem.py`), `s3://bucket/prefix` → `S3Store` (in
`mediaserver/storage/s3.py`, which alone imports aiobotocore).

Reads are streams: `await store.get(key)` raises `ObjectNotFound` *before* the first byte, so an
HTTP handler can answer 404 before it starts a response, then yields chunks. Exhaust the
stream or `aclose()` it (`contextlib.aclosing`) to release the file or connection promptly.
"""

from __future__ import annotations

import abc
import asyncio
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
#: `FileStore.storage_url_for(key)` is this + key: it names the object, not where the
#: server keeps its files.
FILE_STORAGE_URL = "file://objects/"

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

    @abc.abstractmethod
    async def sweep(self, older_than: datetime) -> int:
        """Remove what interrupted writes left behind before `older_than` and no object
        is made of: partial writes (a node killed mid-upload) and, where the backend has
        them, empty directories. Safe while other writes run (they are younger). Returns
        how many things were removed."""

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
        """The object's name for API responses: `s3://bucket/prefix/key`, or
        `file://objects/key` (FILE_STORAGE_URL) without the server's filesystem path."""

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

    def batch(self, limit: int = 4) -> ObjectBatch:
        """A batch of new objects written as one unit (a VOD rendition's segments); see
        `ObjectBatch`. At most `limit` objects are held in memory waiting to be written."""
        return ObjectBatch(self, limit)

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


class ObjectBatch:
    """Objects written as one unit, such as the segments of a VOD rendition: `add()` each,
    then `commit()`, which returns once every one of them is complete and durable (before
    that, none is promised to be). Writes run in the background while the caller makes the
    next objects, at most `limit` waiting at a time; a failed write is raised by a later
    `add()` or by `commit()`. Each object is replaced whole: a reader sees the old or the
    new version. `abort()` stops: objects already written stay (for the caller to delete
    or to overwrite on a retry). Object metadata may be simpler than `put`'s: the content
    type the key implies, an etag that need not be an md5.

    This default writes each object with `put_bytes` (on S3, a PUT each, multipart when
    large: at most `limit` requests in flight); `FileStore` has its own (plain files, made
    durable in one fsync pass).
    """

    def __init__(self, store: ObjectStore, limit: int = 4) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._store = store
        self._slots = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task[ObjectInfo]] = set()
        self._failure: BaseException | None = None

    async def add(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Queue `data` to be stored under `key`; waits while `limit` objects are waiting."""
        validate_key(key)
        await self._slots.acquire()
        if self._failure is not None:
            self._slots.release()
            raise self._failure
        task = asyncio.create_task(self._store.put_bytes(key, data, content_type))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[ObjectInfo]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()

    async def commit(self) -> None:
        """Wait for every write; raises the first failure (the batch is then incomplete)."""
        await asyncio.gather(*self._tasks)
        if self._failure is not None:
            raise self._failure

    async def abort(self) -> None:
        """Cancel the writes still running; idempotent, and harmless after `commit()`."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


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
        from mediaserver.storage.filesystem import FileStore

        store = FileStore(path)
    elif parts.scheme == "s3":
        from mediaserver.storage.s3 import S3Store  # imports aiobotocore only when S3 is used

        if not parts.netloc:
            raise ValueError(f"s3 storage URL must name a bucket: {storage_url}")
        store = S3Store(
            parts.netloc, parts.path.strip("/"), s3_endpoint_url, region, access_key, secret_key
        )
    else:
        raise ValueError(f"unsupported storage URL: {storage_url}")
    await store.open()
    return store
