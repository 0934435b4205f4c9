"""`FileStore`, and the behaviour every `ObjectStore` backend must share.

`ObjectStoreContract` is run here against the filesystem and, in
`tests/integration/test_s3store.py`, against S3 on a loopback server: each backend's test
class only supplies the `store` fixture.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mediaserver.storage import (
    ObjectNotFound,
    ObjectStore,
    RangeNotSatisfiable,
    StoreError,
    open_store,
    validate_key,
)
from mediaserver.storage.filesystem import FileStore

MiB = 1024 * 1024
BAD_KEYS = [
    "../x",
    "/abs",
    "a//b",
    "a/../b",
    "x\0y",
    "",
    "a/",
    "./a",
    "a/./b",
    "a b",
    "caf\u00e9",
    "a\\b",
    "x.meta.json",
    "a/.tmp-123",
    "k" * 1025,
]


class Boom(Exception):
    """What a caller's chunk iterator raises midway (e.g. the upload size limit)."""


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def pattern(size: int, seed: int = 0) -> bytes:
    """Non-repeating-looking test bytes, so misplaced chunks are noticed."""
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def generated(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """`total` bytes made chunk by chunk, never held whole; yields to the loop between chunks
    as a network stream does."""
    for sent in range(0, total, size):
        yield bytes([sent // size % 251]) * min(size, total - sent)
        await asyncio.sleep(0)


async def failing(after: int) -> AsyncIterator[bytes]:
    async for chunk in generated(after):
        yield chunk
    raise Boom("over the limit")


async def stalled(after: int, reached: asyncio.Event) -> AsyncIterator[bytes]:
    async for chunk in generated(after):
        yield chunk
    reached.set()
    await asyncio.Event().wait()  # a client that stops sending
    yield b"never"


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def put_then_cancel(store: ObjectStore, key: str, after: int) -> None:
    reached = asyncio.Event()
    task = asyncio.create_task(store.put(key, stalled(after, reached)))
    await asyncio.wait_for(reached.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class ObjectStoreContract:
    """Behaviour tests shared by every backend; subclasses provide a `store` fixture."""

    async def test_put_from_chunks_then_get_streams_the_same_bytes(
        self, store: ObjectStore
    ) -> None:
        data = pattern(3 * MiB + 12345)
        info = await store.put("uploads/u1/original.mp3", chunked(data, 70_001), "audio/mpeg")
        assert (info.key, info.size, info.content_type) == (
            "uploads/u1/original.mp3",
            len(data),
            "audio/mpeg",
        )
        stream = await store.get("uploads/u1/original.mp3")
        chunks = [chunk async for chunk in stream]
        assert b"".join(chunks) == data
        assert max(len(chunk) for chunk in chunks) <= MiB
        assert await store.read("uploads/u1/original.mp3") == data

    async def test_head_reports_size_type_md5_etag_and_time(self, store: ObjectStore) -> None:
        data = b"#EXTM3U\n#EXT-X-ENDLIST\n"
        put = await store.put_bytes("hls/h1/manifest.m3u8", data, "application/vnd.apple.mpegurl")
        head = await store.head("hls/h1/manifest.m3u8")
        assert head.size == len(data)
        assert head.content_type == "application/vnd.apple.mpegurl"
        assert head.etag == put.etag == md5(data)  # single-part: S3's ETag is the md5
        assert head.last_modified is not None
        assert abs(head.last_modified - datetime.now(UTC)) < timedelta(minutes=5)

    async def test_content_type_defaults_to_octet_stream(self, store: ObjectStore) -> None:
        await store.put_bytes("blobs/b1", b"x")
        assert (await store.head("blobs/b1")).content_type == "application/octet-stream"

    async def test_empty_object(self, store: ObjectStore) -> None:
        info = await store.put("empty/e1", chunked(b""))
        assert (info.size, info.etag) == (0, md5(b""))
        assert (await store.head("empty/e1")).size == 0
        assert await collect(await store.get("empty/e1")) == b""

    async def test_get_range_returns_the_requested_bytes(self, store: ObjectStore) -> None:
        data = pattern(10_240)
        await store.put_bytes("seg/s1.ts", data, "video/mp2t")
        assert await collect(await store.get_range("seg/s1.ts", 0, 0)) == data[:1]
        assert await collect(await store.get_range("seg/s1.ts", 100, 199)) == data[100:200]
        assert await collect(await store.get_range("seg/s1.ts", 10_000, 99_999)) == data[10_000:]
        with pytest.raises(RangeNotSatisfiable):
            await store.get_range("seg/s1.ts", 10_240, 10_300)
        with pytest.raises(ValueError):
            await store.get_range("seg/s1.ts", 5, 4)
        with pytest.raises(ValueError):
            await store.get_range("seg/s1.ts", -1, 4)

    async def test_missing_objects_raise_object_not_found(self, store: ObjectStore) -> None:
        await store.put_bytes("dir/present", b"x")
        for missing in ("nothing/here", "dir", "dir/present/below"):
            with pytest.raises(ObjectNotFound):
                await store.head(missing)
            with pytest.raises(ObjectNotFound):
                await store.get(missing)
            with pytest.raises(ObjectNotFound):
                await store.get_range(missing, 0, 10)
            with pytest.raises(ObjectNotFound):
                await store.read(missing)

    async def test_list_is_a_string_prefix_in_key_order(self, store: ObjectStore) -> None:
        for key in ("a/2.ts", "b/4", "ab/3", "a/1.ts", "a/deep/5"):
            await store.put_bytes(key, key.encode())
        listed = [info async for info in store.list("a/")]
        assert [info.key for info in listed] == ["a/1.ts", "a/2.ts", "a/deep/5"]
        assert [info.size for info in listed] == [6, 6, 8]
        assert listed[0].etag == md5(b"a/1.ts")
        assert [info.key async for info in store.list("a")] == [
            "a/1.ts",
            "a/2.ts",
            "a/deep/5",
            "ab/3",
        ]
        assert [info.key async for info in store.list("a/1")] == ["a/1.ts"]
        assert len([info async for info in store.list()]) == 5
        assert [info async for info in store.list("zzz/")] == []

    async def test_delete_is_idempotent(self, store: ObjectStore) -> None:
        await store.put_bytes("d/one", b"1")
        await store.delete("d/one")
        await store.delete("d/one")
        await store.delete("never/existed")
        with pytest.raises(ObjectNotFound):
            await store.head("d/one")

    async def test_delete_prefix_removes_only_that_prefix(self, store: ObjectStore) -> None:
        for key in ("up/1/a.ts", "up/1/b.ts", "up/1/sub/c", "up/10/keep", "up/2/keep"):
            await store.put_bytes(key, b"x")
        await store.delete_prefix("up/1/")
        assert [info.key async for info in store.list()] == ["up/10/keep", "up/2/keep"]
        await store.delete_prefix("up/1/")  # nothing left: still fine
        with pytest.raises(ValueError):
            await store.delete_prefix("")

    async def test_put_replaces_an_existing_object(self, store: ObjectStore) -> None:
        await store.put_bytes("r/key", b"old", "text/plain")
        await store.put("r/key", chunked(b"new contents", 3), "audio/mpeg")
        assert await store.read("r/key") == b"new contents"
        assert (await store.head("r/key")).content_type == "audio/mpeg"

    async def test_failing_iterator_leaves_no_object_and_keeps_the_old_one(
        self, store: ObjectStore
    ) -> None:
        with pytest.raises(Boom):
            await store.put("f/new", failing(3 * MiB))
        with pytest.raises(ObjectNotFound):
            await store.head("f/new")
        await store.put_bytes("f/old", b"previous version")
        with pytest.raises(Boom):
            await store.put("f/old", failing(2 * MiB))
        assert await store.read("f/old") == b"previous version"
        assert [info.key async for info in store.list("f/")] == ["f/old"]

    async def test_cancelled_put_leaves_no_object(self, store: ObjectStore) -> None:
        await put_then_cancel(store, "c/upload", 3 * MiB)
        with pytest.raises(ObjectNotFound):
            await store.head("c/upload")
        assert [info async for info in store.list("c/")] == []

    async def test_concurrent_puts_to_one_key_leave_one_whole_object(
        self, store: ObjectStore
    ) -> None:
        payloads = [pattern(600_000 + n, seed=n) for n in range(6)]
        await asyncio.gather(*(store.put("same/key", chunked(p, 50_000)) for p in payloads))
        final = await store.read("same/key")
        assert final in payloads
        head = await store.head("same/key")
        assert (head.size, head.etag) == (len(final), md5(final))
        assert [info.key async for info in store.list("same/")] == ["same/key"]

    @pytest.mark.parametrize("key", BAD_KEYS)
    async def test_invalid_keys_are_refused(self, store: ObjectStore, key: str) -> None:
        with pytest.raises(ValueError):
            await store.put_bytes(key, b"x")
        with pytest.raises(ValueError):
            await store.put(key, chunked(b"x"))
        for call in (store.get, store.head, store.delete, store.presigned_url, store.read):
            with pytest.raises(ValueError):
                await call(key)
        with pytest.raises(ValueError):
            await store.get_range(key, 0, 1)
        with pytest.raises(ValueError):
            store.storage_url_for(key)
        assert [info async for info in store.list()] == []

    @pytest.mark.parametrize("prefix", ["../", "/abs", "a//", "a/../"])
    async def test_invalid_prefixes_are_refused(self, store: ObjectStore, prefix: str) -> None:
        with pytest.raises(ValueError):
            [info async for info in store.list(prefix)]
        with pytest.raises(ValueError):
            await store.delete_prefix(prefix)

    async def test_read_refuses_objects_over_its_limit(self, store: ObjectStore) -> None:
        await store.put_bytes("big/one", b"x" * 100)
        with pytest.raises(StoreError):
            await store.read("big/one", max_size=99)

    async def test_closing_a_stream_early_is_fine(self, store: ObjectStore) -> None:
        await store.put("early/close", generated(3 * MiB))
        stream = await store.get("early/close")
        assert len(await anext(stream)) > 0
        await stream.aclose()
        await (await store.get("early/close")).aclose()  # never iterated
        assert (await store.head("early/close")).size == 3 * MiB

    async def test_a_committed_batch_reads_back_with_its_types(self, store: ObjectStore) -> None:
        bodies = {f"hls/b1/segment{n:03d}.ts": pattern(50_000 + n, seed=n) for n in range(7)}
        batch = store.batch(limit=2)
        for key, body in bodies.items():
            await batch.add(key, body, "video/mp2t")
        await batch.commit()
        await batch.abort()  # harmless once committed
        assert [info.key async for info in store.list("hls/b1/")] == sorted(bodies)
        for key, body in bodies.items():
            assert await store.read(key) == body
            head = await store.head(key)
            assert (head.size, head.content_type) == (len(body), "video/mp2t")

    async def test_a_batch_replaces_existing_objects(self, store: ObjectStore) -> None:
        await store.put_bytes("hls/b2/segment000.ts", b"an older, longer version", "video/mp2t")
        batch = store.batch()
        await batch.add("hls/b2/segment000.ts", b"new", "video/mp2t")
        await batch.commit()
        assert await store.read("hls/b2/segment000.ts") == b"new"
        assert (await store.head("hls/b2/segment000.ts")).size == 3

    @pytest.mark.parametrize("key", ["../x", "a//b", "x.meta.json"])
    async def test_a_batch_refuses_invalid_keys(self, store: ObjectStore, key: str) -> None:
        batch = store.batch()
        with pytest.raises(ValueError):
            await batch.add(key, b"x")
        await batch.commit()
        assert [info async for info in store.list()] == []


def test_validate_key_accepts_server_generated_keys() -> None:
    for key in ("uploads/0b1e/seg_00001.ts", "a", "A-Z_0.9/x.m3u8", ".hidden/x"):
        assert validate_key(key) == key


@pytest.mark.parametrize("key", BAD_KEYS)
def test_validate_key_refuses(key: str) -> None:
    with pytest.raises(ValueError):
        validate_key(key)


def leftovers(root: Path) -> list[str]:
    """Every file and directory under `root` (temp files included)."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


class TestFileStore(ObjectStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[FileStore]:
        async with FileStore(tmp_path / "objects") as store:
            yield store

    async def test_a_30_mb_put_and_get_keep_memory_flat(self, store: FileStore) -> None:
        total = 30 * MiB
        tracemalloc.start()
        try:
            info = await store.put("big/upload.mp3", generated(total), "audio/mpeg")
            _, put_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            digest = hashlib.md5(usedforsecurity=False)
            async for chunk in await store.get("big/upload.mp3"):
                digest.update(chunk)
            _, get_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert info.size == total
        assert digest.hexdigest() == info.etag
        assert put_peak < 5 * MiB, put_peak
        assert get_peak < 5 * MiB, get_peak

    async def test_failed_and_cancelled_puts_leave_no_temp_files(self, store: FileStore) -> None:
        await store.put_bytes("up/keep", b"k")
        with pytest.raises(Boom):
            await store.put("up/failed", failing(3 * MiB))
        await put_then_cancel(store, "up/cancelled", 3 * MiB)
        await put_then_cancel(store, "up/keep", 2 * MiB)
        assert leftovers(store.root) == ["up", "up/keep", "up/keep.meta.json"]
        assert await store.read("up/keep") == b"k"

    async def test_object_appears_only_when_complete(self, store: FileStore) -> None:
        reached = asyncio.Event()
        task = asyncio.create_task(store.put("slow/x", stalled(2 * MiB, reached)))
        await asyncio.wait_for(reached.wait(), timeout=10)
        with pytest.raises(ObjectNotFound):
            await store.head("slow/x")
        assert [info async for info in store.list("slow/")] == []
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def test_layout_and_urls(self, store: FileStore) -> None:
        await store.put_bytes("uploads/u1/seg_00001.ts", b"ts", "video/mp2t")
        assert (store.root / "uploads/u1/seg_00001.ts").read_bytes() == b"ts"
        # Names the object without the server's filesystem path (unlike `store.url`, for logs).
        assert store.storage_url_for("uploads/u1/seg_00001.ts") == (
            "file://objects/uploads/u1/seg_00001.ts"
        )
        assert str(store.root) not in store.storage_url_for("uploads/u1/seg_00001.ts")
        assert store.url == store.root.as_uri()
        assert await store.presigned_url("uploads/u1/seg_00001.ts") is None

    async def test_delete_prunes_empty_directories(self, store: FileStore) -> None:
        await store.put_bytes("uploads/u1/hls/a.ts", b"a")
        await store.put_bytes("uploads/u2/b.ts", b"b")
        await store.delete_prefix("uploads/u1/")
        await store.delete("uploads/u2/b.ts")
        assert leftovers(store.root) == []
        await store.put_bytes("uploads/u1/again", b"c")  # the tree is recreated on demand
        assert await store.read("uploads/u1/again") == b"c"

    async def test_a_stale_sidecar_is_never_trusted(self, store: FileStore) -> None:
        await store.put_bytes("s/x.mp3", b"first", "audio/mpeg")
        path = store.root / "s/x.mp3"
        path.write_bytes(b"changed behind our back")  # e.g. another process, or a crash
        head = await store.head("s/x.mp3")
        assert head.size == len(b"changed behind our back")
        assert head.etag != md5(b"first")
        assert head.content_type == "audio/mpeg"  # guessed from the name

    async def test_batch_objects_are_plain_files_without_sidecars(self, store: FileStore) -> None:
        batch = store.batch()
        await batch.add("up/hls/segment000.ts", b"ts", "video/mp2t")
        await batch.add("up/hls/index.m3u8", b"#EXTM3U\n")  # no type: the name's
        await batch.add("up/hls/notes.txt", b"n", "application/x-dj-notes")  # not implied
        await batch.commit()
        assert leftovers(store.root) == [
            "up",
            "up/hls",
            "up/hls/index.m3u8",
            "up/hls/notes.txt",
            "up/hls/notes.txt.meta.json",  # a type the name does not imply is kept
            "up/hls/segment000.ts",
        ]
        types = {info.key: info.content_type async for info in store.list("up/")}
        assert types == {
            "up/hls/index.m3u8": "application/vnd.apple.mpegurl",
            "up/hls/notes.txt": "application/x-dj-notes",
            "up/hls/segment000.ts": "video/mp2t",
        }
        first = await store.head("up/hls/segment000.ts")
        again = store.batch()
        await again.add("up/hls/segment000.ts", b"ts, rewritten", "video/mp2t")
        await again.commit()
        assert (await store.head("up/hls/segment000.ts")).etag != first.etag

    async def test_a_batch_drops_the_sidecar_of_an_object_it_replaces(
        self, store: FileStore
    ) -> None:
        await store.put_bytes("r/hls/segment000.ts", b"old", "video/mp2t")
        batch = store.batch()
        await batch.add("r/hls/segment000.ts", b"newer", "video/mp2t")
        await batch.commit()
        assert leftovers(store.root) == ["r", "r/hls", "r/hls/segment000.ts"]
        head = await store.head("r/hls/segment000.ts")
        assert (head.size, head.content_type) == (5, "video/mp2t")
        assert head.etag != md5(b"old")

    async def test_a_batch_fsyncs_every_file_and_directory_once_at_commit(
        self, store: FileStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        synced: list[str] = []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        keys = [f"v/hls/segment{n:03d}.ts" for n in range(12)]
        batch = store.batch(limit=3)
        for key in keys:
            await batch.add(key, key.encode(), "video/mp2t")
        new_directories = list(synced)  # the directory entries made for v/ and v/hls/
        assert sorted(new_directories) == sorted([str(store.root), str(store.root / "v")])
        await batch.commit()
        at_commit = synced[len(new_directories) :]
        assert at_commit == [str(store.root / key) for key in keys] + [str(store.root / "v/hls")]

    async def test_a_failed_batch_write_stops_the_batch(self, store: FileStore) -> None:
        await store.put_bytes("f/blocker", b"a file where the batch needs a directory")
        batch = store.batch(limit=1)
        with pytest.raises(StoreError):
            await batch.add("f/blocker/segment000.ts", b"a", "video/mp2t")
            await batch.add("f/ok/segment001.ts", b"b", "video/mp2t")  # raises the failure
        with pytest.raises(StoreError):
            await batch.commit()
        await batch.abort()
        assert leftovers(store.root) == ["f", "f/blocker", "f/blocker.meta.json"]

    async def test_an_aborted_batch_leaves_only_whole_objects(self, store: FileStore) -> None:
        bodies = {f"a/hls/segment{n:03d}.ts": pattern(100_000, seed=n) for n in range(6)}
        batch = store.batch(limit=4)
        for key, body in bodies.items():
            await batch.add(key, body, "video/mp2t")
        await batch.abort()  # returns once the write in flight is done: none runs after it
        assert not any(".tmp-" in name for name in leftovers(store.root))
        async for info in store.list("a/"):
            assert await store.read(info.key) == bodies[info.key]

    async def test_types_follow_from_media_names_without_a_sidecar(self, store: FileStore) -> None:
        # Not from the system's mime.types, which may call ".ts" a Qt Linguist file.
        (store.root / "m").mkdir()
        for name in ("segment000.ts", "manifest.m3u8", "original.mp3", "data.bin"):
            (store.root / "m" / name).write_bytes(b"x")
        types = {info.key: info.content_type async for info in store.list("m/")}
        assert types == {
            "m/data.bin": "application/octet-stream",
            "m/manifest.m3u8": "application/vnd.apple.mpegurl",
            "m/original.mp3": "audio/mpeg",
            "m/segment000.ts": "video/mp2t",
        }

    async def test_stray_files_are_not_listed(self, store: FileStore) -> None:
        await store.put_bytes("l/real", b"r")
        (store.root / "l/.tmp-deadbeef").write_bytes(b"crash leftover")
        (store.root / "l/bad name").write_bytes(b"not a key")
        os.symlink("/etc/passwd", store.root / "l/link")
        assert [info.key async for info in store.list("l/")] == ["l/real"]


async def test_open_store_picks_the_filesystem_backend(tmp_path: Path) -> None:
    store = await open_store((tmp_path / "objects").as_uri())
    try:
        assert isinstance(store, FileStore)
        assert (tmp_path / "objects").is_dir()
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url", ["file://relative/path", "file://host/abs", "http://example.com/x", "objects"]
)
async def test_open_store_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError):
        await open_store(url)


async def test_sweep_removes_old_partial_writes_and_empty_directories(tmp_path: Path) -> None:
    """What `kill -9` mid-upload and refused uploads leave behind goes; objects, their
    directories and anything younger than the cutoff stay."""
    root = tmp_path / "objects"
    async with FileStore(root) as store:
        await store.put_bytes("uploads/audio/u1/a/original.mp3", b"kept", "audio/mpeg")
        partial = root / "uploads/audio/u1/b/.tmp-0123abcd"
        partial.parent.mkdir(parents=True)
        partial.write_bytes(b"x" * 1000)
        empty = root / "uploads/audio/u2/c"
        empty.mkdir(parents=True)
        young = root / "uploads/audio/u3/d/.tmp-fresh"
        young.parent.mkdir(parents=True)
        young.write_bytes(b"y")
        hour_ago = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
        for path in (partial, partial.parent, empty, empty.parent, root / "uploads/audio/u1"):
            os.utime(path, (hour_ago, hour_ago))
        removed = await store.sweep(datetime.now(UTC) - timedelta(minutes=30))
        assert removed == 4  # the .tmp file, b/, c/ and u2/
        assert not partial.exists() and not partial.parent.exists()
        assert not (root / "uploads/audio/u2").exists()
        assert young.exists()  # a write still in progress, as far as anyone can tell
        assert await store.read("uploads/audio/u1/a/original.mp3") == b"kept"
        assert await store.sweep(datetime.now(UTC) - timedelta(minutes=30)) == 0
