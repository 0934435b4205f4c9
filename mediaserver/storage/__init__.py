"""Media objects (uploads, HLS renditions, podcast episodes, fetched playlist tracks) behind
one async interface, `ObjectStore`, with two backends: `filesystem.FileStore` and `s3.S3Store`.

The server codes against the interface re-exported here and opens a backend with
`open_store(STORAGE_URL)`; the backend modules are imported only when their scheme is used
(aiobotocore only for `s3://`).
"""

from mediaserver.storage.store import (
    CHUNK_SIZE,
    ObjectBatch,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    RangeNotSatisfiable,
    StoreError,
    open_store,
    validate_key,
)

__all__ = [
    "CHUNK_SIZE",
    "ObjectBatch",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "RangeNotSatisfiable",
    "StoreError",
    "open_store",
    "validate_key",
]
