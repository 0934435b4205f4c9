"""A playlist's combined HLS manifest: the tracks' VOD playlists joined by `combined_manifest`
(an `#EXT-X-DISCONTINUITY` before every track after the first), written to the object store
at `playlists/<id>/hls/manifest.m3u8` (the backlog's key) whenever every track is ready,
and rewritten on every change.

The stored manifest's segment URIs are rooted paths of our segment route
(`/v1/playlists/<id>/hls/<track_id>/segment000.ts`); `served` makes them absolute under
MEDIASERVER_PUBLIC_URL (or the origin the player used) when the manifest is served, adding
a signed grant for playlists that are not open to everyone. So the stored object never
depends on the host name, and a private playlist's grants are always fresh.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from control.playlists import queries
from control.playlists.fetch import hls_prefix
from control.playlists.queries import TrackRow
from hls.concat import combined_manifest
from hls.playlist import MediaPlaylist, parse_media_playlist, render_media_playlist
from hls.vod import MANIFEST_CONTENT_TYPE, MANIFEST_NAME
from mediaserver.db import Connection
from mediaserver.storage import ObjectStore

#: An upload's own VOD playlist text (`UploadsService.manifest`).
UploadManifest = Callable[[uuid.UUID], Awaitable[str]]
_READS = 8  # track playlists read from the store at once


def manifest_key(playlist_id: uuid.UUID) -> str:
    return f"playlists/{playlist_id}/hls/{MANIFEST_NAME}"


def segment_path(playlist_id: uuid.UUID, track_id: uuid.UUID) -> str:
    """Where the segment route serves a track's segments (relative to the origin)."""
    return f"/v1/playlists/{playlist_id}/hls/{track_id}"


def served(text: str, origin: str, query: str = "") -> str:
    """The stored manifest with absolute segment URIs: `origin` before and `query` after
    every URI line (RFC 8216 §4.1: a line that is neither blank nor starts with `#`)."""
    lines = text.splitlines()
    for n, line in enumerate(lines):
        if line and not line.startswith("#"):
            lines[n] = f"{origin}{line}{query}"
    return "\n".join(lines) + "\n"


class ManifestWriter:
    """(Re)generates a playlist's combined manifest in the store."""

    def __init__(self, store: ObjectStore, upload_manifest: UploadManifest) -> None:
        self._store = store
        self._upload_manifest = upload_manifest

    async def refresh(self, conn: Connection, playlist_id: uuid.UUID) -> bool:
        """Inside a transaction holding the playlist's row lock (so writers take turns and
        the last one read the latest tracks): when every track is ready, write the combined
        manifest and mark the playlist `hls_ready`; else mark it not ready. Returns which."""
        tracks = await queries.tracks(conn, playlist_id)
        if not tracks or any(t.status != "ready" for t in tracks):
            await queries.set_hls(conn, playlist_id, None)
            return False
        slots = asyncio.Semaphore(_READS)

        async def part(track: TrackRow) -> tuple[str, MediaPlaylist]:
            async with slots:
                text = await self._track_playlist(track)
            return segment_path(playlist_id, track.track_id), parse_media_playlist(text)

        parts = await asyncio.gather(*(part(t) for t in tracks))
        text = render_media_playlist(combined_manifest(parts))
        key = manifest_key(playlist_id)
        await self._store.put_bytes(key, text.encode(), MANIFEST_CONTENT_TYPE)
        await queries.set_hls(conn, playlist_id, key)
        return True

    async def _track_playlist(self, track: TrackRow) -> str:
        if track.upload_id is not None:
            return await self._upload_manifest(track.upload_id)
        assert track.external_key is not None
        data = await self._store.read(f"{hls_prefix(track.external_key)}/{MANIFEST_NAME}")
        return data.decode()
