"""The `transcode` job: an upload's stored MP3 → VOD HLS in the store, then `ready` — or
`failed` when the audio is longer than the owner's upload plan allows (its length is known
only here; `control.tracks.quotas`).

One pass over the source: `segment_to_hls` checks the file while it segments it and
describes it (duration, average bitrate) from the same frames, so the source is read once,
from the store, with no local copy. Idempotent: a retried or resumed run writes the same
keys again. A file that cannot be published (truncated, damaged) fails at once with the
reason in `error_message` (US-9.1); anything else (the store or the database unavailable)
is retried by the job queue.
"""

from __future__ import annotations

import asyncpg

from control.tracks.quotas import Ceiling, length_limit
from control.uploads import queries
from hls.vod import Mp3Error, segment_to_hls
from mediaserver.clock import Clock, utcnow
from mediaserver.jobs import Job, PermanentJobError
from mediaserver.storage import ObjectStore

TRANSCODE = "transcode"
ERROR_PREFIX = "Transcoding error:"
GAVE_UP = f"{ERROR_PREFIX} the file could not be processed; please upload it again."


class Transcoder:
    """Runs `transcode` jobs."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: ObjectStore,
        hls_seconds: int,
        ceiling: Ceiling,
        clock: Clock = utcnow,
    ) -> None:
        self._pool = pool
        self._ceiling = ceiling
        self._store = store
        self._hls_seconds = hls_seconds
        self._clock = clock

    async def run(self, job: Job) -> None:
        """Check and segment the file in one pass, mark the upload ready."""
        row = await queries.by_id(self._pool, job.subject_id)
        if row is None or row.deleted_at is not None or row.status != "processing":
            return  # deleted, or finished by an earlier run
        try:
            result = await segment_to_hls(
                self._store,
                row.source_key,
                row.hls_prefix,
                self._hls_seconds,
                refuse_truncated=True,
            )
        except Mp3Error as exc:
            message = exc.message
            if not message.startswith(ERROR_PREFIX):
                message = f"{ERROR_PREFIX} {message}"
            raise PermanentJobError(message) from exc
        info, now = result.info, self._clock()
        plan, max_seconds = await length_limit(self._pool, self._ceiling, row.owner_id)
        if info.duration > max_seconds:
            await self._store.delete_prefix(f"{row.hls_prefix}/")
            raise PermanentJobError(
                f"{ERROR_PREFIX} the audio is {info.duration / 60:.1f} minutes long: the "
                f"{plan} plan allows at most {max_seconds / 60:g} minutes."
            )
        if not await queries.mark_ready(
            self._pool, row.upload_id, info.duration, info.bitrate_kbps, now
        ):
            await self._store.delete_prefix(f"{row.hls_prefix}/")  # deleted while we worked

    async def failed(self, job: Job, error: str) -> None:
        """The job's `on_failed` hook: the upload is `failed` with a message for its owner."""
        message = error if error.startswith(ERROR_PREFIX) else GAVE_UP
        await queries.mark_failed(self._pool, job.subject_id, message, self._clock())
