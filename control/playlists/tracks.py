"""A playlist body's tracks: checked (US-3.3 "validate each track") and laid out as rows.

An upload must be the playlist owner's and `ready`; an external URL must answer `HEAD` with
200 and `audio/mpeg` — unless this playlist already holds a fetched copy of it, which keeps
a DJ's edits working while the other server is down ("fetched once"). Checks run
concurrently; the first failing track in playlist order is reported (422).

Rows keep the `track_id` of the old track with the same source (and, for an external
track, its fetched copy), so segment URLs handed out before an edit keep working and an
external track is not fetched again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from control.playlists.fetch import source_key
from control.playlists.queries import TrackRow
from control.playlists.schemas import SourceType, TrackIn, TrackStatus
from control.uploads.queries import UploadRow
from mediaserver.errors import NotFound, Unprocessable

#: `UploadsService.get_ready` and `ExternalAudio.check`.
ReadyUpload = Callable[[uuid.UUID | None, uuid.UUID], Awaitable[UploadRow]]
CheckUrl = Callable[[str], Awaitable[None]]
_CHECKS = 8  # tracks checked at once
_TITLE_LIMIT = 200


@dataclass(frozen=True, slots=True)
class CheckedTrack:
    source_type: SourceType
    upload_id: uuid.UUID | None
    url: str | None
    title: str
    artist: str | None
    duration_seconds: float | None

    @property
    def source(self) -> tuple[str, str]:
        return self.source_type, str(self.upload_id or self.url)


@dataclass(frozen=True, slots=True)
class Layout:
    """The rows to store, the external tracks to fetch, and the old tracks left out."""

    rows: list[TrackRow]
    fetch: list[uuid.UUID] = field(default_factory=list)
    dropped: list[TrackRow] = field(default_factory=list)


class TrackChecker:
    def __init__(self, ready_upload: ReadyUpload, check_url: CheckUrl) -> None:
        self._ready_upload = ready_upload
        self._check_url = check_url

    async def check_all(
        self, owner_id: uuid.UUID, tracks: Sequence[TrackIn], fetched: set[str]
    ) -> list[CheckedTrack]:
        """Every track checked; `fetched` are the external URLs already held."""
        slots = asyncio.Semaphore(_CHECKS)

        async def check(n: int, track: TrackIn) -> CheckedTrack:
            async with slots:
                return await self._check(n, owner_id, track, fetched)

        results = await asyncio.gather(
            *(check(n, t) for n, t in enumerate(tracks, 1)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [r for r in results if isinstance(r, CheckedTrack)]

    async def _check(
        self, n: int, owner_id: uuid.UUID, track: TrackIn, fetched: set[str]
    ) -> CheckedTrack:
        if track.upload_id is not None:
            try:
                upload = await self._ready_upload(owner_id, track.upload_id)
            except NotFound:
                raise Unprocessable(
                    f"Track {n}: upload {track.upload_id} is not one of your uploads"
                ) from None
            except Unprocessable as exc:
                raise Unprocessable(f"Track {n}: {exc.message}") from None
            return CheckedTrack(
                "upload",
                upload.upload_id,
                None,
                track.title or upload.title,
                track.artist or upload.artist,
                upload.duration_seconds or track.duration_seconds,
            )
        url = track.url or ""
        if url not in fetched:
            try:
                await self._check_url(url)
            except Unprocessable as exc:
                raise Unprocessable(f"Track {n}: {exc.message}") from None
        title = track.title or _title_from(url)
        return CheckedTrack("external", None, url, title, track.artist, track.duration_seconds)


def lay_out(playlist_id: uuid.UUID, tracks: list[CheckedTrack], old: list[TrackRow]) -> Layout:
    """Rows for `tracks` in order, reusing old tracks with the same source (see module doc)."""
    reusable: dict[tuple[str, str], list[TrackRow]] = {}
    for row in old:
        reusable.setdefault(_source(row), []).append(row)
    layout = Layout(rows=[])
    for position, track in enumerate(tracks):
        candidates = reusable.get(track.source)
        previous = candidates.pop(0) if candidates else None
        row = _row(playlist_id, position, track, previous)
        layout.rows.append(row)
        if row.source_type == "external" and (previous is None or previous.status == "failed"):
            layout.fetch.append(row.track_id)
    kept = {row.track_id for row in layout.rows}
    layout.dropped.extend(row for row in old if row.track_id not in kept)
    return layout


def _row(
    playlist_id: uuid.UUID, position: int, track: CheckedTrack, previous: TrackRow | None
) -> TrackRow:
    track_id = previous.track_id if previous is not None else uuid.uuid4()
    status: TrackStatus = "ready"
    duration = track.duration_seconds
    if track.source_type == "external":
        status = "processing"  # fetched by a job, unless a fetched copy is carried over
        if previous is not None and previous.status != "failed":
            status = previous.status
            if status == "ready":
                duration = previous.duration_seconds
    return TrackRow(
        playlist_id=playlist_id,
        position=position,
        track_id=track_id,
        source_type=track.source_type,
        upload_id=track.upload_id,
        external_url=track.url,
        external_key=source_key(playlist_id, track_id) if track.url is not None else None,
        title=track.title,
        artist=track.artist,
        status=status,
        duration_seconds=duration,
        error_message=None,
    )


def _source(row: TrackRow) -> tuple[str, str]:
    return row.source_type, str(row.upload_id or row.external_url)


def _title_from(url: str) -> str:
    """A title for an untitled external track: its file name without the extension."""
    parts = urlsplit(url)
    name = PurePosixPath(unquote(parts.path)).stem.strip()
    return (name or parts.hostname or "Untitled")[:_TITLE_LIMIT]
