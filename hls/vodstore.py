"""What `hls.vod.segment_to_hls` needs of an object store, as structural types.

`hls/` imports nothing from `mediaserver/`: the server's `ObjectStore` (in
`mediaserver/storage/`) satisfies these protocols by shape, so it is passed in unchanged,
and a test can pass anything with the same five methods. Only the calls the VOD segmenter
makes are named here; the full interface and its guarantees are documented on `ObjectStore`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol


class VodBatch(Protocol):
    """New objects written as one unit: durable once `commit()` returns (`ObjectBatch`)."""

    async def add(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Queue `data` for `key`; may wait while earlier writes are in flight, and raises an
        earlier write's failure."""
        ...

    async def commit(self) -> None:
        """Wait until every added object is durable; raises the first failed write."""
        ...

    async def abort(self) -> None:
        """Stop the writes still running; idempotent, harmless after `commit()`."""
        ...


class VodStore(Protocol):
    """An object store as the VOD segmenter uses it: read the source, write a rendition."""

    def batch(self, limit: int = 4) -> VodBatch:
        """A batch holding at most `limit` objects in memory waiting to be written."""
        ...

    async def get(self, key: str) -> AsyncGenerator[bytes, None]:
        """The object's bytes in chunks; raises the store's not-found error before the first."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> object:
        """Store `data` under `key` durably, replacing any object there."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose key starts with `prefix` (not empty)."""
        ...
