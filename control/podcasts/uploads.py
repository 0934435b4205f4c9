"""The uploads domain as episodes see it: a ready upload of the podcast owner's to build an
episode on, and its source MP3 read by byte range from the object store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

from control.uploads.queries import UploadRow
from control.uploads.service import UploadsService
from mediaserver.errors import NotFound, Unprocessable
from mediaserver.storage import ObjectNotFound, ObjectStore


class EpisodeUploads:
    """Implements `control.podcasts.episodes.UploadCatalog` and serves episode media."""

    def __init__(self, uploads: UploadsService, store: ObjectStore) -> None:
        self._uploads = uploads
        self._store = store

    async def ready(self, owner_id: uuid.UUID, upload_id: uuid.UUID) -> UploadRow:
        """The owner's ready upload; 422 when it is unknown, someone else's, or not ready."""
        try:
            return await self._uploads.get_ready(owner_id, upload_id)
        except NotFound:
            raise Unprocessable(
                f"Field 'upload_id' does not name one of your uploads ({upload_id})"
            ) from None

    async def source(self, upload_id: uuid.UUID) -> UploadRow:
        """The upload an episode plays; 404 once it is gone (deleted with `force`)."""
        try:
            return await self._uploads.get_ready(None, upload_id)
        except (NotFound, Unprocessable):
            raise NotFound("The episode's media is no longer available") from None

    async def read(self, key: str, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Bytes `start..end` (inclusive) of the object; 404 when it is missing."""
        try:
            return await self._store.get_range(key, start, end)
        except ObjectNotFound:
            raise NotFound("The episode's media is no longer available") from None
