"""The origin's memory: immutable objects within a byte budget (one store read per object,
shared by concurrent misses), rows that expire, and bodies with ETags and gzip variants."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from control.mediacache import Body, ObjectCache, TtlCache
from mediaserver.storage import ObjectNotFound
from mediaserver.storage.filesystem import FileStore


class CountingStore(FileStore):
    """A filesystem store counting its reads, which wait for `gate` when it is set."""

    reads = 0
    gate: asyncio.Event | None = None

    async def get(self, key: str) -> AsyncGenerator[bytes, None]:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        return await super().get(key)


@pytest.fixture
async def store(tmp_path: Path) -> CountingStore:
    store = CountingStore(tmp_path / "objects")
    await store.open()
    return store


async def test_each_object_is_read_once_and_the_budget_holds(store: CountingStore) -> None:
    cache = ObjectCache(store, budget=8 * 3000)
    for n in range(10):
        await store.put_bytes(f"hls/segment{n:03d}.ts", bytes([n]) * 3000)
    first = await cache.get("hls/segment000.ts")
    assert first.data == bytes([0]) * 3000
    assert await cache.get("hls/segment000.ts") is first and store.reads == 1
    for n in range(10):
        assert (await cache.get(f"hls/segment{n:03d}.ts")).data[0] == n
    assert cache.bytes <= 8 * 3000
    assert "hls/segment009.ts" in cache and "hls/segment000.ts" not in cache  # LRU out
    cache.purge_prefix("hls/")
    assert cache.bytes == 0 and "hls/segment009.ts" not in cache


async def test_objects_over_an_eighth_of_the_budget_are_served_not_kept(
    store: CountingStore,
) -> None:
    cache = ObjectCache(store, budget=8000)
    await store.put_bytes("big.ts", b"x" * 1001)
    assert len((await cache.get("big.ts")).data) == 1001
    assert "big.ts" not in cache and cache.bytes == 0


async def test_concurrent_misses_share_one_read(store: CountingStore) -> None:
    cache = ObjectCache(store, budget=1 << 20)
    await store.put_bytes("a/manifest.m3u8", b"#EXTM3U\n" * 200)
    store.gate = asyncio.Event()
    waiting = [asyncio.create_task(cache.get("a/manifest.m3u8")) for _ in range(20)]
    await asyncio.sleep(0)
    store.gate.set()
    bodies = await asyncio.gather(*waiting)
    assert store.reads == 1 and len({id(b) for b in bodies}) == 1
    assert gzip.decompress(bodies[0].gzipped or b"") == b"#EXTM3U\n" * 200  # text: gzip too


async def test_a_missing_object_is_not_found_for_every_waiter(store: CountingStore) -> None:
    cache = ObjectCache(store, budget=1 << 20)
    results = await asyncio.gather(
        *(cache.get("nope/segment000.ts") for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ObjectNotFound) for r in results)
    await store.put_bytes("nope/segment000.ts", b"now")  # not remembered as missing
    assert (await cache.get("nope/segment000.ts")).data == b"now"


async def test_a_reader_that_leaves_does_not_fail_the_others(store: CountingStore) -> None:
    cache = ObjectCache(store, budget=1 << 20)
    await store.put_bytes("k.ts", b"data")
    store.gate = asyncio.Event()
    leaver = asyncio.create_task(cache.get("k.ts"))
    await asyncio.sleep(0)
    stayer = asyncio.create_task(cache.get("k.ts"))
    await asyncio.sleep(0)
    leaver.cancel()
    store.gate.set()
    assert (await stayer).data == b"data"
    with pytest.raises(asyncio.CancelledError):
        await leaver


def test_rows_expire_and_the_oldest_go_first() -> None:
    now = [100.0]
    rows: TtlCache[str, int] = TtlCache(ttl=1.0, max_entries=2, clock=lambda: now[0])
    rows.put("a", 1)
    rows.put("b", 2)
    assert rows.get("a") == 1
    now[0] += 0.5
    rows.put("c", 3)  # "a" was stored first: it goes
    assert (rows.get("a"), rows.get("b"), rows.get("c")) == (None, 2, 3)
    now[0] += 0.6
    assert rows.get("b") is None and rows.get("c") == 3
    rows.drop_where(lambda value: value == 3)
    assert rows.get("c") is None and len(rows) == 0


def test_bodies_have_strong_etags_per_content_coding() -> None:
    text = b"#EXTINF:10.0,\nsegment000.ts\n" * 40
    body = Body.of(text, compress=True)
    assert body.etag.startswith('"') and body.gzip_etag != body.etag
    assert Body.of(text, compress=True).etag == body.etag  # same bytes, same validator
    assert body.gzipped is not None and gzip.decompress(body.gzipped) == text
    short = Body.of(b"short", compress=True)
    assert short.gzipped is None and short.gzip_etag is None  # not worth it


async def test_a_missing_row_is_loaded_once_for_everyone_asking() -> None:
    rows: TtlCache[str, str] = TtlCache(ttl=60.0)
    calls = 0
    gate = asyncio.Event()

    async def query() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return f"row {calls}"

    waiting = [asyncio.create_task(rows.load("k", query)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert set(await asyncio.gather(*waiting)) == {"row 1"} and calls == 1
    assert await rows.load("k", query) == "row 1" and calls == 1  # stored

    # Dropped while a load is in flight: that (older) answer is not stored.
    rows.pop("k")
    gate.clear()
    stale = asyncio.create_task(rows.load("k", query))
    await asyncio.sleep(0)
    rows.pop("k")
    gate.set()
    assert await stale == "row 2"
    assert rows.get("k") is None
    assert await rows.load("k", query, keep=lambda row: False) == "row 3"
    assert rows.get("k") is None  # `keep` said no


async def test_a_loader_that_leaves_lets_the_next_caller_load() -> None:
    rows: TtlCache[str, str] = TtlCache()
    gate = asyncio.Event()

    async def query() -> str:
        await gate.wait()
        return "row"

    leaver = asyncio.create_task(rows.load("k", query))
    await asyncio.sleep(0)
    stayer = asyncio.create_task(rows.load("k", query))
    await asyncio.sleep(0)
    leaver.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await stayer == "row"
    with pytest.raises(asyncio.CancelledError):
        await leaver
