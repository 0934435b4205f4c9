"""External playlist tracks: checked with `HEAD` when the playlist is saved (200 and
`audio/mpeg`, through the SSRF guard, within a bounded time), then fetched once into the
object store by the `external_track` job — streamed and size-capped, never buffered whole —
and segmented like an upload, so the combined manifest only ever lists our own segments.

Objects of an external track live under `playlists/<playlist>/tracks/<track>/`:
`original.mp3` (the fetched copy, `external_key`) and `hls/` (its VOD rendition), as an
upload's do under `uploads/audio/<user>/<upload>/`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import asyncpg

from control.playlists import queries
from control.urlguard import UrlGuard, UrlRefused
from hls.vod import Mp3Error, NotMp3, segment_to_hls
from mediaserver.config import Settings
from mediaserver.errors import Unprocessable
from mediaserver.jobs import Job, PermanentJobError
from mediaserver.storage import ObjectStore

EXTERNAL_TRACK = "external_track"
USER_AGENT = "Mozilla/5.0 (compatible; mediaserver playlist track fetcher)"
MP3_TYPE = "audio/mpeg"
ERROR_PREFIX = "External track:"
GAVE_UP = f"{ERROR_PREFIX} it could not be fetched; save the playlist again to retry."
_CHUNK = 64 * 1024
_MiB = 1024 * 1024

#: `finish(track_id, duration, error)`: the track is ready (error None) or failed; False
#: when the track is gone (its playlist was edited or deleted meanwhile).
FinishTrack = Callable[[uuid.UUID, float | None, str | None], Awaitable[bool]]


def track_folder(playlist_id: uuid.UUID, track_id: uuid.UUID) -> str:
    return f"playlists/{playlist_id}/tracks/{track_id}"


def source_key(playlist_id: uuid.UUID, track_id: uuid.UUID) -> str:
    return f"{track_folder(playlist_id, track_id)}/original.mp3"


def hls_prefix(external_key: str) -> str:
    """The HLS rendition beside a fetched copy."""
    return f"{external_key.rsplit('/', 1)[0]}/hls"


class FetchRefused(Unprocessable):
    """The external server's answer can never give a playable track (retrying won't help)."""


class TransientFetchError(Exception):
    """The external server failed in a way a later attempt may not (5xx, 429)."""


class ExternalAudio:
    """`HEAD` checks and size-capped downloads of external MP3s, each through `UrlGuard`
    (every redirect hop and connection checked). `close()` releases the client sessions."""

    def __init__(
        self, guard: UrlGuard, max_bytes: int, check_seconds: float, fetch_seconds: float
    ) -> None:
        self._guard = guard
        self._max_bytes = max_bytes
        self._timeouts = {"HEAD": check_seconds, "GET": fetch_seconds}
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    @classmethod
    def for_settings(cls, settings: Settings) -> ExternalAudio:
        return cls(
            UrlGuard(settings.allow_private_media_urls),
            settings.external_track_max_bytes,
            settings.external_track_check_seconds,
            settings.external_track_fetch_seconds,
        )

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()

    async def check(self, url: str) -> None:
        """422 unless `url` answers `HEAD` with 200 and `audio/mpeg` (and is not too large)."""
        try:
            async with await self._request("HEAD", url) as response:
                self._check_answer(response, "HEAD")
        except aiohttp.ClientResponseError:  # aiohttp's parser refused the answer itself
            raise Unprocessable("The track URL did not answer with valid HTTP") from None
        except (aiohttp.ClientError, TimeoutError, OSError):
            raise Unprocessable(
                "The track URL could not be reached (connection failed or timed out)"
            ) from None

    async def download(self, url: str, store: ObjectStore, key: str) -> int:
        """Stream the MP3 at `url` into the store under `key`; its size. Raises
        `FetchRefused` / `UrlRefused` (permanent), network errors otherwise (retry)."""
        async with await self._request("GET", url) as response:
            if response.status >= 500 or response.status == 429:
                raise TransientFetchError(f"the track URL answered HTTP {response.status}")
            self._check_answer(response, "GET")

            async def capped() -> AsyncIterator[bytes]:
                received = 0
                async for chunk in response.content.iter_chunked(_CHUNK):
                    received += len(chunk)
                    if received > self._max_bytes:
                        raise self._too_large()
                    yield chunk

            info = await store.put(key, capped(), MP3_TYPE)
        return info.size

    async def _request(self, method: str, url: str) -> aiohttp.ClientResponse:
        session = self._sessions.get(method)
        if session is None or session.closed:
            session = self._sessions[method] = self._guard.session(self._timeouts[method])
        return await self._guard.request(session, method, url, {"User-Agent": USER_AGENT})

    def _check_answer(self, response: aiohttp.ClientResponse, method: str) -> None:
        if response.status != 200:
            raise FetchRefused(
                f"The track URL answered {method} with HTTP {response.status}; it must answer 200"
            )
        if method == "HEAD" and response.content_type != MP3_TYPE:
            served = response.headers.get("Content-Type") or "no Content-Type"
            raise FetchRefused(f"The track URL serves {served}; tracks must be audio/mpeg (MP3)")
        length = response.headers.get("Content-Length", "")
        # ASCII digits only: `isdigit` also accepts "²", which `int` refuses.
        if length.isascii() and length.isdigit() and int(length) > self._max_bytes:
            raise self._too_large()

    def _too_large(self) -> FetchRefused:
        limit = self._max_bytes
        size = f"{limit // _MiB} MB" if limit % _MiB == 0 else f"{limit} bytes"
        return FetchRefused(f"The track is larger than the {size} limit for external tracks")


class TrackFetcher:
    """Runs `external_track` jobs (subject: the track id). Idempotent: a retried run fetches
    and segments into the same keys again."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: ObjectStore,
        audio: ExternalAudio,
        hls_seconds: int,
        finish: FinishTrack,
    ) -> None:
        self._pool = pool
        self._store = store
        self._audio = audio
        self._hls_seconds = hls_seconds
        self._finish = finish

    async def run(self, job: Job) -> None:
        """Fetch, segment, mark the track ready (which may make the playlist ready)."""
        track = await queries.track(self._pool, job.subject_id)
        if track is None or track.status != "processing" or track.external_key is None:
            return  # edited away, deleted, or finished by an earlier run
        key = track.external_key
        try:
            await self._audio.download(track.external_url or "", self._store, key)
            result = await segment_to_hls(self._store, key, hls_prefix(key), self._hls_seconds)
        except (FetchRefused, UrlRefused) as exc:
            raise PermanentJobError(f"{ERROR_PREFIX} {exc.message}") from exc
        except Mp3Error as exc:
            raise PermanentJobError(f"{ERROR_PREFIX} {_unplayable(exc)}") from exc
        if not await self._finish(track.track_id, result.duration, None):
            await self._store.delete_prefix(key.rsplit("/", 1)[0] + "/")

    async def failed(self, job: Job, error: str) -> None:
        """The job's `on_failed` hook: the track is `failed`, with a message for the DJ."""
        message = error if error.startswith(ERROR_PREFIX) else GAVE_UP
        await self._finish(job.subject_id, None, message)


def _unplayable(exc: Mp3Error) -> str:
    if isinstance(exc, NotMp3):
        looks = f" (it looks like {exc.detected})" if exc.detected else ""
        return f"not a playable MP3: the file at the URL is not MPEG audio{looks}"
    return f"not a playable MP3: {exc.message}"
