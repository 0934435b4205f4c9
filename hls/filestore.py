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

from hls.store import (
    CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    META_SUFFIX,
    TMP_PREFIX,
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
    Unlike S3, a key cannot be both an object and a "directory" (`a` and `a/b`): StoreError.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self._commit_lock = threading.Lock()  # keeps data and sidecar renames paired

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def storage_url_for(self, key: str) -> str:
        return self._path(key).as_uri()

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

    async def put_bytes(
        self, key: str, data: bytes, content_type: str | None = None
    ) -> ObjectInfo:
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
        ctype = mimetypes.guess_type(key)[0] or DEFAULT_CONTENT_TYPE
        return ObjectInfo(key, st.st_size, etag, _mtime(st), ctype)

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
        file, size = await _to_thread(self._open, key, start)
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

    async def presigned_url(self, key: str, expires_seconds: int = 3600) -> str | None:
        validate_key(key)
        return None


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + META_SUFFIX)


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC)
