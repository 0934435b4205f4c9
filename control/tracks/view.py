"""What a track looks like to its readers: metadata, status, media URLs (`links`), the
renditions they may play, play statistics and a few related public tracks."""

from __future__ import annotations

import asyncpg

from control.tracks import links, queries
from control.tracks.queries import RenditionRow, TrackRow
from control.tracks.schemas import DayPlays, RelatedTrack, RenditionOut, TrackOut, TrackStats

STATS_DAYS = 30
RELATED = 5


class TrackView:
    """Renders `TrackOut`s (reads the renditions, statistics and related tracks)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def render(self, row: TrackRow, owner: bool, origin: str) -> TrackOut:
        ready = row.status == "ready"
        renditions = await queries.renditions(self._pool, row.track_id) if ready else []
        days, unique = await queries.stats(self._pool, row.track_id, STATS_DAYS)
        related = await queries.related(self._pool, row.track_id, row.artist, row.genre, RELATED)
        tid = row.track_id
        return TrackOut(
            track_id=tid,
            status=row.status,  # type: ignore[arg-type]
            error_message=row.error_message,
            title=row.title,
            artist=row.artist,
            album=row.album,
            description=row.description,
            tags=list(row.tags),
            genre=row.genre,
            year=row.year,
            bpm=row.bpm,
            key=row.musical_key,
            visibility=row.visibility,  # type: ignore[arg-type]
            is_public=row.visibility == "public",
            is_downloadable=row.is_downloadable,
            license=row.license,
            uploader_id=row.owner_id,
            filename=row.filename,
            source_format=row.source_format,
            sample_rate=row.sample_rate,
            channels=row.channels,
            duration_seconds=row.duration_seconds,
            loudness_lufs=row.loudness_lufs,
            hls_master_url=links.master_url(origin, tid) if ready else None,
            waveform_url=links.waveform_url(origin, tid) if ready else None,
            artwork_url=links.artwork_url(origin, tid) if ready and row.artwork_key else None,
            renditions=[
                _rendition(origin, row, r) for r in renditions if owner or r.quality != "lossless"
            ],
            stats=TrackStats(
                plays=row.plays,
                unique_listeners=unique,
                by_day=[DayPlays(day=d, plays=p, unique_listeners=u) for d, p, u in days],
            ),
            related=[_related(origin, r) for r in related],
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def _rendition(origin: str, row: TrackRow, r: RenditionRow) -> RenditionOut:
    hls_dir = r.hls_prefix.rsplit("/", 1)[-1] if r.hls_prefix else None
    return RenditionOut(
        quality=r.quality,  # type: ignore[arg-type]
        format=r.format,
        codec=r.codec,
        bitrate_kbps=r.bitrate_kbps,
        hls_url=links.rendition_hls_url(origin, row.track_id, hls_dir) if hls_dir else None,
        file_url=links.stream_url(origin, row.track_id, r.quality, r.format),
    )


def _related(origin: str, record: asyncpg.Record) -> RelatedTrack:
    tid = record["track_id"]
    return RelatedTrack(
        track_id=tid,
        title=record["title"],
        artist=record["artist"],
        genre=record["genre"],
        duration_seconds=record["duration_seconds"],
        artwork_url=links.artwork_url(origin, tid) if record["artwork_key"] else None,
        url=links.track_url(origin, tid),
    )
