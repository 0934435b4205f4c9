"""What the HLS origin keeps in memory, so that a steady stream of manifest and segment GETs
costs no database query and no object-store read per request (DESIGN "Performance targets").

- `TtlCache`: rows that decide access (an upload, a playlist, a track), reused for a short
  time (`ACCESS_TTL`, 1 s) like the live routes' access decision. The service that changes
  a row drops its entry at once on this node; other nodes see the change within the TTL.
- `ObjectCache`: immutable objects (an upload's segments and manifest, an external
  track's segments) by key, least recently used first out, within a byte budget
  (`MEDIA_CACHE_BYTES`). Concurrent misses of one key share one store read.
- `Body`: bytes ready to send, with a strong ETag and, for text, its gzip variant.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aiohttp import web
from multidict import CIMultiDict

from mediaserver.storage import ObjectNotFound, ObjectStore, StoreError

#: How long a row that decides access to media is reused (seconds).
ACCESS_TTL = 1.0
#: At most this many rows are kept per cache; the oldest go first.
MAX_ROWS = 10_000
#: Objects larger than this share of the budget are served but not kept.
_LARGEST_SHARE = 8
#: Text smaller than this is not worth compressing.
_GZIP_MIN = 512

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Abandoned(Exception):
    """The caller loading an entry left before it was loaded: load it yourself."""


class TtlCache(Generic[K, V]):
    """A bounded map whose entries expire `ttl` seconds after they were stored. `load`
    fetches a missing entry once however many callers want it at the same moment (when an
    entry expires, 50 players asking at once make one query, not 50)."""

    def __init__(
        self,
        ttl: float = ACCESS_TTL,
        max_entries: int = MAX_ROWS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V | None]] = {}

    async def load(
        self,
        key: K,
        loader: Callable[[], Awaitable[V | None]],
        keep: Callable[[V], bool] = lambda value: True,
    ) -> V | None:
        """The entry, else `await loader()` (None: there is none), stored when `keep`
        says so. Concurrent callers share one `loader` call and its outcome. On the media
        routes, callers write `cache.get(key) or await cache.load(...)`: a hit then costs
        no coroutine (nor the loader's closure)."""
        while True:
            value = self.get(key)
            if value is not None:
                return value
            pending = self._loading.get(key)
            if pending is None:
                break
            try:
                value = await asyncio.shield(pending)
            except _Abandoned:
                continue
            return value
        loading: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._loading[key] = loading
        try:
            value = await loader()
        except BaseException as exc:
            loading.set_exception(exc if isinstance(exc, Exception) else _Abandoned())
            loading.exception()  # retrieved: there may be no other caller
            raise
        finally:
            current = self._loading.get(key) is loading
            if current:
                del self._loading[key]
        loading.set_result(value)
        if current and value is not None and keep(value):  # not dropped meanwhile
            self.put(key, value)
        return value

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        """Drop the entry, and the outcome of a load in flight (it may predate a change)."""
        self._entries.pop(key, None)
        self._loading.pop(key, None)

    def drop_where(self, stale: Callable[[V], bool]) -> None:
        """Drop every entry whose value `stale` selects, and every load in flight."""
        for key in [k for k, (_, v) in self._entries.items() if stale(v)]:
            del self._entries[key]
        self._loading.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class Body:
    """A whole representation in memory: its bytes, strong ETag and gzip variant (text),
    whose own ETag (RFC 9110 §8.8.3: one per content coding) is made once, here, not per
    request."""

    data: bytes
    etag: str
    gzipped: bytes | None = None
    gzip_etag: str | None = None
    #: Response headers made for it (`control.bodies`), by how it is sent.
    headers: dict[Hashable, CIMultiDict[str]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, data: bytes, *, compress: bool = False) -> Body:
        etag = f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'
        if compress and len(data) >= _GZIP_MIN:
            packed = gzip.compress(data, compresslevel=6, mtime=0)
            if len(packed) < len(data):
                return cls(data, etag, packed, f'{etag[:-1]}-gz"')
        return cls(data, etag)

    @property
    def size(self) -> int:
        return len(self.data) + len(self.gzipped or b"")


class ObjectCache:
    """Immutable objects of `store` in memory, within `budget` bytes (0: keep nothing)."""

    def __init__(self, store: ObjectStore, budget: int, *, compress_suffix: str = ".m3u8") -> None:
        self._store = store
        self._budget = budget
        self._largest = budget // _LARGEST_SHARE
        self._compress_suffix = compress_suffix
        self._entries: OrderedDict[str, Body] = OrderedDict()
        self._loading: dict[str, asyncio.Future[Body]] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def cached(self, key: str) -> Body | None:
        """The object's bytes if they are in memory, without waiting (else await `get`)."""
        body = self._entries.get(key)
        if body is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return body

    async def get(self, key: str) -> Body:
        """The object's bytes; raises `ObjectNotFound` (or `StoreError`, `ValueError` for a
        malformed key) like the store."""
        body = self.cached(key)
        if body is not None:
            return body
        pending = self._loading.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except ObjectNotFound:
                raise
            except StoreError:
                pass  # the first reader failed or left: try ourselves
        return await self._load(key)

    async def _load(self, key: str) -> Body:
        self.misses += 1
        loading: asyncio.Future[Body] = asyncio.get_running_loop().create_future()
        self._loading[key] = loading
        try:
            data = await self._store.read(key)
            body = Body.of(data, compress=key.endswith(self._compress_suffix))
        except BaseException as exc:
            failure = exc if isinstance(exc, StoreError) else StoreError(f"read of {key} failed")
            loading.set_exception(failure)
            loading.exception()  # retrieved: waiters may be none
            raise
        finally:
            if self._loading.get(key) is loading:
                del self._loading[key]
        loading.set_result(body)
        self._keep(key, body)
        return body

    def _keep(self, key: str, body: Body) -> None:
        if body.size > self._largest:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        self._entries[key] = body
        self.bytes += body.size
        while self.bytes > self._budget:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.size

    def purge_prefix(self, prefix: str) -> None:
        """Forget every object under `prefix` (deleted from the store)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            self.bytes -= self._entries.pop(key).size

    def __contains__(self, key: str) -> bool:
        return key in self._entries


#: The node's cache of immutable media objects.
MEDIA_OBJECTS = web.AppKey("media_objects", ObjectCache)
