"""The filesystem object store: atomic writes (temp file, fsync, rename, fsync of the
directory), all I/O in worker threads, content type and md5 etag in a sidecar file."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import hashlib
import json
import mimetypes
import os
import stat
import threading
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from mediaserver.storage.store import (
    CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    FILE_STORAGE_URL,
    META_SUFFIX,
    TMP_PREFIX,
    ObjectBatch,
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

_T = TypeVar("_T")


def _close_opened(opening: asyncio.Future[tuple[BinaryIO, int]]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result()[0].close()


async def _to_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """Run blocking file I/O in a worker thread; OSError becomes StoreError."""
    try:
        return await asyncio.to_thread(fn, *args)
    except OSError as exc:
        raise StoreError(f"{getattr(fn, '__name__', 'file I/O')}: {exc}") from exc


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _TempFile:
    """A `.tmp-<uuid>` file beside the target, written from worker threads.

    A cancelled `asyncio.to_thread` call leaves its thread running, so every method holds
    `_lock`: `discard` waits for an in-flight write instead of closing the descriptor under it.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        self.md5 = hashlib.md5(usedforsecurity=False)
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None

    def create(self, makedirs: Callable[[Path], None]) -> None:
        # A concurrent delete may prune the directory between mkdir and open: retry.
        with self._lock:
            for attempt in range(3):
                makedirs(self.path.parent)
                try:
                    self._file = open(self.path, "xb")
                    return
                except FileNotFoundError:
                    if attempt == 2:
                        raise

    def write(self, chunks: builtins.list[bytes]) -> None:
        with self._lock:
            assert self._file is not None
            for chunk in chunks:
                self.md5.update(chunk)
                self._file.write(chunk)

    def finish(self) -> os.stat_result:
        """Flush and fsync; the returned stat identifies the data once renamed."""
        with self._lock:
            assert self._file is not None
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            return os.stat(self.path)

    def discard(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_ino, st.st_size, st.st_mtime_ns]


class FileStore(ObjectStore):
    """Objects as files under `root`, written atomically (temp file, fsync, rename, fsync dir).

    Content type and etag (md5 hex of the bytes, like S3's single-part ETag) live in a
    `<key>.meta.json` sidecar that records the data file's inode, size and mtime. A sidecar
    that does not match its file (a crash or another process between the two renames) is
    ignored: the etag is then `<size hex>-<mtime_ns hex>` and the type guessed from the name.
    Objects written by a `batch()` have no sidecar when their name implies their type.
    Unlike S3, a key cannot be both an object and a "directory" (`a` and `a/b`): StoreError.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self._commit_lock = threading.Lock()  # keeps data and sidecar renames paired

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def storage_url_for(self, key: str) -> str:
        # The key in "the objects store", like s3://bucket/key: never the server's own path.
        return f"{FILE_STORAGE_URL}{validate_key(key)}"

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    async def open(self) -> None:
        await _to_thread(functools.partial(self.root.mkdir, parents=True, exist_ok=True))

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> ObjectInfo:
        temp = _TempFile(self._path(key).parent)
        try:
            # Inside the try: if we are cancelled while the thread creates the file, discard()
            # waits for it (same lock) and removes it.
            await _to_thread(temp.create, self._makedirs)
            pending: builtins.list[bytes] = []
            buffered = 0
            async for chunk in chunks:
                pending.append(bytes(chunk))
                buffered += len(chunk)
                if buffered >= CHUNK_SIZE:
                    await _to_thread(temp.write, pending)
                    pending, buffered = [], 0
            if pending:
                await _to_thread(temp.write, pending)
            return await _to_thread(self._commit, temp, key, content_type)
        except BaseException:
            with contextlib.suppress(StoreError):  # never mask why the put failed
                await _to_thread(temp.discard)
            raise

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        """Data already in memory (segments, manifests): the whole write, fsync and commit
        in one worker-thread hop instead of three."""
        temp = _TempFile(self._path(key).parent)
        try:
            return await _to_thread(self._write_all, temp, key, data, content_type)
        except BaseException:
            with contextlib.suppress(StoreError):
                await _to_thread(temp.discard)
            raise

    def _write_all(
        self, temp: _TempFile, key: str, data: bytes, content_type: str | None
    ) -> ObjectInfo:
        temp.create(self._makedirs)
        temp.write([data])
        return self._commit(temp, key, content_type)

    def batch(self, limit: int = 4) -> ObjectBatch:
        """Plain files made durable together on `commit()`: see `_FileBatch`."""
        return _FileBatch(self, limit)

    def _makedirs(self, directory: Path) -> None:
        missing = []
        while not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for new in reversed(missing):
            with contextlib.suppress(FileExistsError):
                new.mkdir()
            _fsync_dir(new.parent)  # the new entry must survive a crash too

    def _commit(self, temp: _TempFile, key: str, content_type: str | None) -> ObjectInfo:
        path = self._path(key)
        st = temp.finish()
        etag = temp.md5.hexdigest()
        ctype = content_type or DEFAULT_CONTENT_TYPE
        meta = {"content_type": ctype, "etag": etag, "stamp": _stamp(st)}
        meta_temp = _TempFile(path.parent)
        try:
            meta_temp.create(self._makedirs)
            meta_temp.write([json.dumps(meta).encode()])
            meta_temp.finish()
            with self._commit_lock:
                os.replace(temp.path, path)
                os.replace(meta_temp.path, _meta_path(path))
        except BaseException:
            meta_temp.discard()
            raise
        _fsync_dir(path.parent)
        return ObjectInfo(key, st.st_size, etag, _mtime(st), ctype)

    def _info(self, key: str, path: Path, st: os.stat_result) -> ObjectInfo:
        try:
            meta = json.loads(_meta_path(path).read_bytes())
        except (OSError, ValueError):
            meta = {}
        if meta.get("stamp") == _stamp(st):
            return ObjectInfo(key, st.st_size, meta["etag"], _mtime(st), meta["content_type"])
        etag = f"{st.st_size:x}-{st.st_mtime_ns:x}"
        return ObjectInfo(key, st.st_size, etag, _mtime(st), implied_type(key))

    def _head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not stat.S_ISREG(st.st_mode):
            raise ObjectNotFound(key)
        return self._info(key, path, st)

    async def head(self, key: str) -> ObjectInfo:
        return await _to_thread(self._head, key)

    def _open(self, key: str, start: int) -> tuple[BinaryIO, int]:
        try:
            file = open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        try:
            size = os.fstat(file.fileno()).st_size
            file.seek(min(start, size))
        except BaseException:
            file.close()
            raise
        return file, size

    async def get(self, key: str) -> AsyncGenerator[bytes, None]:
        return await primed(self._chunks(key, 0, None))

    async def get_range(
        self, key: str, start: int, end_inclusive: int
    ) -> AsyncGenerator[bytes, None]:
        check_range(start, end_inclusive)
        return await primed(self._chunks(key, start, end_inclusive))

    async def _chunks(
        self, key: str, start: int, end_inclusive: int | None
    ) -> AsyncGenerator[bytes, None]:
        # The descriptor stays valid if the object is replaced or deleted meanwhile: a reader
        # sees one whole version.
        file, size = await self._opened(key, start)
        try:
            if end_inclusive is not None and start >= size:
                raise RangeNotSatisfiable(f"{key}: range starts at {start}, size is {size}")
            end = size if end_inclusive is None else min(end_inclusive + 1, size)
            yield b""  # primed: the open succeeded
            remaining = end - start
            while remaining > 0:
                data = await _to_thread(file.read, min(CHUNK_SIZE, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data
        finally:
            file.close()

    async def _opened(self, key: str, start: int) -> tuple[BinaryIO, int]:
        """`_open` in a worker thread. A reader cancelled meanwhile (a listener who left)
        does not leak the file the thread goes on to open: it is closed when it arrives."""
        opening = asyncio.ensure_future(_to_thread(self._open, key, start))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_opened)
            raise

    def _delete(self, keys: builtins.list[str]) -> None:
        parents = set()
        for key in keys:
            path = self._path(key)
            with self._commit_lock:
                for victim in (path, _meta_path(path)):
                    # A "directory" key is not an object: nothing to delete, as on S3.
                    with contextlib.suppress(
                        FileNotFoundError, NotADirectoryError, IsADirectoryError
                    ):
                        victim.unlink()
            parents.add(path.parent)
        for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            self._prune(parent)

    def _prune(self, directory: Path) -> None:
        """Remove now-empty directories up to (not including) the root."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    async def delete(self, key: str) -> None:
        validate_key(key)
        await _to_thread(self._delete, [key])

    async def delete_prefix(self, prefix: str) -> None:
        if not validate_prefix(prefix):
            raise ValueError("delete_prefix needs a non-empty prefix")
        await _to_thread(self._delete_prefix, prefix)

    def _delete_prefix(self, prefix: str) -> None:
        self._delete([key for key, _ in self._walk(prefix)])

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        for info in await _to_thread(self._list, prefix):
            yield info

    def _list(self, prefix: str) -> builtins.list[ObjectInfo]:
        return [self._info(key, self.root / key, st) for key, st in self._walk(prefix)]

    def _walk(self, prefix: str) -> builtins.list[tuple[str, os.stat_result]]:
        """(key, stat) of every object whose key starts with `prefix`, in key order."""
        base = prefix.rpartition("/")[0]
        found = []
        stack = [base]
        while stack:
            rel = stack.pop()
            try:
                entries = builtins.list(os.scandir(self.root / rel))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                key = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    if f"{key}/".startswith(prefix):
                        stack.append(key)
                elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                    with contextlib.suppress(ValueError):
                        found.append((validate_key(key), entry.stat(follow_symlinks=False)))
        found.sort(key=lambda item: item[0])
        return found

    async def sweep(self, older_than: datetime) -> int:
        return await _to_thread(self._sweep, older_than.timestamp())

    def _sweep(self, cutoff: float) -> int:
        """`.tmp-*` files (a write that never reached its rename) and empty directories
        (a refused or aborted upload's) last changed before `cutoff`, deepest first; a
        directory a write has just made or entered is younger than `cutoff`. Directories
        are judged by their age before the sweep (removing a child changes a parent's)."""
        walked = builtins.list(os.walk(self.root, topdown=False))
        aged = set()
        for directory, _, _ in walked:
            with contextlib.suppress(OSError):
                if os.stat(directory).st_mtime < cutoff:
                    aged.add(directory)
        removed = 0
        for directory, _, files in walked:
            here = Path(directory)
            for name in files:
                if name.startswith(TMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        if (here / name).stat().st_mtime < cutoff:
                            (here / name).unlink()
                            removed += 1
            if here != self.root and directory in aged:
                with contextlib.suppress(OSError):  # not empty (any more), or gone: kept
                    here.rmdir()
                    removed += 1
        return removed

    async def presigned_url(self, key: str, expires_seconds: int = 3600) -> str | None:
        validate_key(key)
        return None


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + META_SUFFIX)


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC)


# Content types a key's extension implies, looked up before `mimetypes`, whose tables come
# partly from the system (Debian's /etc/mime.types makes ".ts" a Qt Linguist file).
_TYPES = {
    ".ts": "video/mp2t",  # RFC 8216 §3.2
    ".m3u8": "application/vnd.apple.mpegurl",  # RFC 8216 §4
    ".mp3": "audio/mpeg",
}


def implied_type(key: str) -> str:
    """The content type of an object without a sidecar, from its name."""
    name = key.rpartition("/")[2]
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or DEFAULT_CONTENT_TYPE


class _FileBatch(ObjectBatch):
    """`FileStore.batch()`. Each object is written once, as a plain file: under a temp name
    renamed over the key (so a reader sees a whole version), with no fsync, md5 or sidecar
    (a stale sidecar is removed; an object whose name does not imply its content type gets
    a normal durable `put` instead). Writes run in worker-thread hops, each taking every
    object added meanwhile; `commit()` fsyncs every file, then each directory, in one more
    hop. A crash before that may lose or truncate files: nobody was told they exist.
    """

    def __init__(self, store: FileStore, limit: int) -> None:
        super().__init__(store, limit)
        self._files = store
        self._pending: builtins.list[tuple[str, bytes, str | None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._written: builtins.list[Path] = []  # these two: touched by one thread at a time
        self._dirs: set[Path] = set()

    async def add(self, key: str, data: bytes, content_type: str | None = None) -> None:
        validate_key(key)
        await self._slots.acquire()
        if self._failure is not None:
            self._slots.release()
            raise self._failure
        self._pending.append((key, data, content_type))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending and self._failure is None:
            objects, self._pending = self._pending, []
            try:
                await _to_thread(self._write, objects)
            except Exception as exc:  # StoreError: raised by the next add() or commit()
                self._failure = exc
            finally:
                for _ in objects:
                    self._slots.release()
        self._drop_pending()

    def _drop_pending(self) -> None:
        for _ in self._pending:
            self._slots.release()
        self._pending = []

    def _write(self, objects: builtins.list[tuple[str, bytes, str | None]]) -> None:
        store = self._files
        for key, data, content_type in objects:
            path = store._path(key)
            if content_type is not None and content_type != implied_type(key):
                durable = _TempFile(path.parent)
                try:
                    store._write_all(durable, key, data, content_type)
                except BaseException:
                    durable.discard()
                    raise
                continue
            temp = self._create(path.parent)
            try:
                with temp:
                    temp.write(data)
                with store._commit_lock:
                    os.replace(temp.name, path)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(_meta_path(path))
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp.name)
                raise
            self._written.append(path)

    def _create(self, directory: Path) -> BinaryIO:
        # A concurrent delete may prune the directory between writes: create it again.
        attempts = 0
        while True:
            if directory not in self._dirs:
                self._files._makedirs(directory)
                self._dirs.add(directory)
            try:
                return open(directory / f"{TMP_PREFIX}{uuid.uuid4().hex}", "xb")
            except FileNotFoundError:
                self._dirs.discard(directory)
                attempts += 1
                if attempts == 3:
                    raise

    def _sync(self) -> None:
        for path in self._written:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for directory in sorted(self._dirs):
            _fsync_dir(directory)

    async def commit(self) -> None:
        if self._writer is not None:
            await self._writer
        if self._failure is not None:
            raise self._failure
        await _to_thread(self._sync)

    async def abort(self) -> None:
        # Let the hop in flight finish (a worker thread cannot be stopped), so nothing is
        # written after this returns.
        self._drop_pending()
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
