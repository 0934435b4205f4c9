"""What players fetch: a playlist's HLS manifest and segments, and its continuous MP3
(backlog US-3.7, US-3.8, US-5.2, US-6.3).

- Both streams need every track ready (`hls_ready`): until then 409 with `Retry-After`
  (or, when a track failed for good, 409 naming it): the backlog's on-the-fly manifest
  would list raw MP3 URLs, which no HLS player plays (DESIGN "Deviations").
- Every `stream.m3u8` GET answered (200, or 304 to a player revalidating it) adds 1 to the
  day's `play_count`; refusals and HEAD never do. Counts are buffered in memory and written
  every few seconds (`AnalyticsService.count`).
- Segments of a playlist that is not open to everyone carry a signed grant (`?grant=`),
  so players that cannot send headers (Safari's native HLS) still play it. A grant names
  the user the manifest was served to and the playlist's rules; each use re-checks that
  user's access (`control.playlists.grants`, `control.grants`).
- Steady state from memory (`control.mediacache`): the playlist and track rows for
  `ACCESS_TTL` (1 s), the rendered manifest (and its gzip) with the playlist's row, the
  segments (immutable) in the node's object cache. Changes made on this node drop what
  they touch at once (`forget`, called by the playlists service after each commit); other
  nodes see them within `ACCESS_TTL`.
- `stream.mp3` is the tracks' MP3 frames joined by `Mp3Joiner` (no ID3 tags or Xing/Info
  frames at the joins), each source streamed from the store chunk by chunk: the first
  bytes go out before the rest is read, and a listener that leaves stops the reading.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import NamedTuple

import asyncpg
from aiohttp import web

from control import access
from control.accounts import AccountGate
from control.analytics.service import PLAY_COUNT, PLAYLIST, AnalyticsService
from control.grants import Grantees
from control.mediacache import Body, ObjectCache, TtlCache
from control.monetization.service import PaywallService
from control.playlists import queries
from control.playlists.fetch import hls_prefix
from control.playlists.grants import PlaylistGrants
from control.playlists.manifest import manifest_key, served
from control.playlists.queries import PlaylistRow, TrackRow
from control.security import Principal
from control.uploads.service import UploadsService
from hls.concat import Mp3Joiner
from mediaserver.clock import Clock, utcnow
from mediaserver.crypto import UrlSigner
from mediaserver.errors import Conflict, Forbidden, NotFound
from mediaserver.storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)

_RENDERINGS = 16  # renderings kept per playlist (origin x grant); more are rare
RETRY_AFTER = "5"
_RETRY = {"Retry-After": RETRY_AFTER}
_SLICE = 64 * 1024  # joiner input per step: a short turn on the event loop, prompt writes


class Media(NamedTuple):
    """A manifest's or a segment's bytes, and whether shared caches may keep them (an open
    playlist's, fetched without a grant). A tuple: one is made per media GET, and a frozen
    dataclass costs several times more to make."""

    body: Body
    public: bool


@dataclass(slots=True)
class _Playlist:
    """What this node remembers of one playlist for `ACCESS_TTL`: its row, the stored
    manifest's text (None until the playlist is ready), and the manifest rendered per
    (origin, grant query)."""

    row: PlaylistRow
    text: str | None = None
    rendered: dict[tuple[str, str], Body] = field(default_factory=dict)
    #: `access.is_open(row)`: anyone may play it, its links need no grant.
    open: bool = field(init=False)

    def __post_init__(self) -> None:
        self.open = access.is_open(self.row)


class PlaylistMedia:
    """Serves playlists to players, under the access rules of `control.access`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: ObjectStore,
        uploads: UploadsService,
        paywall: PaywallService,
        analytics: AnalyticsService,
        signer: UrlSigner,
        accounts: AccountGate,
        clock: Clock = utcnow,
    ) -> None:
        self._pool = pool
        self._store = store
        self._uploads = uploads
        self._paywall = paywall
        self._analytics = analytics
        self._grants = PlaylistGrants(signer, clock)
        self._grantees = Grantees(pool, accounts)
        self._objects: ObjectCache = uploads.objects
        self._playlists: TtlCache[uuid.UUID, _Playlist] = TtlCache()
        self._tracks: TtlCache[uuid.UUID, TrackRow] = TtlCache()

    def forget(self, playlist_id: uuid.UUID) -> None:
        """The playlist changed (or is gone): drop what this node remembers of it."""
        self._playlists.pop(playlist_id)
        self._tracks.drop_where(lambda track: track.playlist_id == playlist_id)

    def manifest_now(self, playlist_id: uuid.UUID, origin: str, *, play: bool) -> Body | None:
        """`manifest` when memory answers it, for anyone: a ready open playlist (the steady
        state of a public one; shared caches may keep it), else None: await `manifest`."""
        state = self._playlists.get(playlist_id)
        if state is None or not state.open or not state.row.hls_ready:
            return None
        body = state.rendered.get((origin, "")) or self._render(state, origin, "")
        if play:
            self._analytics.count(PLAYLIST, playlist_id, PLAY_COUNT)
        return body

    async def manifest(
        self, principal: Principal | None, playlist_id: uuid.UUID, origin: str, *, play: bool
    ) -> Media:
        """The combined VOD playlist with absolute segment URIs; `play` counts one play."""
        state = await self._playable(principal, playlist_id)
        return self._manifest(state, principal, playlist_id, origin, play)

    def _manifest(
        self,
        state: _Playlist,
        principal: Principal | None,
        playlist_id: uuid.UUID,
        origin: str,
        play: bool,
    ) -> Media:
        query = ""
        if not state.open:
            assert principal is not None  # `_may_play` lets no one else through
            query = self._grants.query(state.row, principal)
        body = state.rendered.get((origin, query)) or self._render(state, origin, query)
        if play:  # US-5.2: one more play today (a `stream.m3u8` GET answered)
            self._analytics.count(PLAYLIST, playlist_id, PLAY_COUNT)
        return Media(body, public=not query)  # grants are the listener's

    def _render(self, state: _Playlist, origin: str, query: str) -> Body:
        """The manifest for players that reach us at `origin`, its segment links carrying
        `query` (a grant, or nothing), kept with the playlist."""
        if state.text is None:  # deleted meanwhile
            raise access.PLAYLIST.not_found()
        body = Body.of(served(state.text, origin, query).encode(), compress=True)
        if len(state.rendered) >= _RENDERINGS:
            state.rendered.clear()
        state.rendered[(origin, query)] = body
        return body

    def segment_now(
        self, playlist_id: uuid.UUID, track_id: uuid.UUID, name: str, grant: str | None
    ) -> Body | None:
        """`segment` when memory answers it, for anyone: no grant, a ready track of an open
        playlist (the steady state of a public one; shared caches may keep it), else None:
        await `segment`, which decides."""
        if grant is not None:
            return None
        track, state = self._tracks.get(track_id), self._playlists.get(playlist_id)
        if (
            track is None
            or state is None
            or not state.open
            or track.upload_id is None
            or track.playlist_id != playlist_id
            or track.status != "ready"
        ):
            return None
        return self._uploads.playable_now(track.upload_id, name)

    async def segment(
        self,
        principal: Principal | None,
        playlist_id: uuid.UUID,
        track_id: uuid.UUID,
        name: str,
        grant: str | None,
    ) -> Media:
        """One TS segment of a ready track of the playlist: with a valid grant whose user
        may still play the playlist, or for a caller who may play it."""
        track = self._tracks.get(track_id) or await self._tracks.load(
            track_id, lambda: queries.track(self._pool, track_id), _is_ready
        )
        if track is None or track.playlist_id != playlist_id or track.status != "ready":
            raise NotFound("Segment not found")
        public = False
        if grant is not None:
            await self._granted(playlist_id, grant)
        else:
            state = self._playlists.get(playlist_id)
            if state is None or not state.open:
                state = await self._readable(principal, playlist_id)
            public = state.open
        if track.upload_id is not None:
            body = self._uploads.playable_now(track.upload_id, name) or (
                await self._uploads.playable_hls(track.upload_id, name)
            )
        else:
            try:
                body = await self._objects.get(f"{hls_prefix(track.external_key or '')}/{name}")
            except (ObjectNotFound, ValueError):
                raise NotFound("Not found") from None
        return Media(body, public=public)

    async def mp3(
        self, principal: Principal | None, playlist_id: uuid.UUID
    ) -> AsyncGenerator[bytes, None]:
        """The continuous MP3 (checked before the first byte: 401/403/404/409 come clean)."""
        await self._playable(principal, playlist_id)
        tracks = await queries.tracks(self._pool, playlist_id)
        return self._joined(tracks)

    async def _joined(self, tracks: list[TrackRow]) -> AsyncGenerator[bytes, None]:
        joiner = Mp3Joiner()
        for track in tracks:
            try:
                source = await self._source(track)
            except NotFound:  # its upload was deleted with ?force=true: play on
                log.warning("playlist track source missing", extra={"track": track.track_id})
                continue
            joiner.begin_track()
            async with contextlib.aclosing(source):
                async for chunk in source:
                    for start in range(0, len(chunk), _SLICE):
                        if out := joiner.feed(chunk[start : start + _SLICE]):
                            yield out
            if tail := joiner.end_track():
                yield tail

    async def _source(self, track: TrackRow) -> AsyncGenerator[bytes, None]:
        if track.upload_id is not None:
            return await self._uploads.open_source(track.upload_id)
        return await self._open(track.external_key or "")

    async def _open(self, key: str) -> AsyncGenerator[bytes, None]:
        try:
            return await self._store.get(key)
        except (ObjectNotFound, ValueError):
            raise NotFound("Not found") from None

    async def _granted(self, playlist_id: uuid.UUID, grant: str) -> None:
        """403 unless `grant` is a live grant of the playlist under its current rules,
        whose user may still play it (answer reused for a second)."""
        state = await self._playlists.load(playlist_id, lambda: self._load(playlist_id))
        if state is None:
            raise access.PLAYLIST.not_found()
        row = state.row
        grantee = self._grants.user_of(row, grant)
        if grantee is None:
            raise Forbidden("This segment link has expired; reload the playlist")
        await self._grantees.require(
            grantee, (playlist_id, *access.rules_of(row)), lambda user: self._may_play(user, row)
        )

    async def _readable(self, principal: Principal | None, playlist_id: uuid.UUID) -> _Playlist:
        state = self._playlists.get(playlist_id) or await self._playlists.load(
            playlist_id, lambda: self._load(playlist_id)
        )
        if state is None:
            raise access.PLAYLIST.not_found()
        await self._may_play(principal, state.row)
        return state

    async def _may_play(self, principal: Principal | None, row: PlaylistRow) -> None:
        """The media routes' rule: private needs access, paid (public too) a subscription."""
        await access.PLAYLIST.check_read(principal, row, self._paywall, paywall_public=True)

    async def _load(self, playlist_id: uuid.UUID) -> _Playlist | None:
        """The row and, once it is ready, the stored manifest (read with the row: one read
        per playlist and `ACCESS_TTL`, however many players load it then)."""
        row = await queries.by_id(self._pool, playlist_id)
        if row is None:
            return None
        text = None
        if row.hls_ready:
            with contextlib.suppress(ObjectNotFound):
                text = (await self._store.read(manifest_key(playlist_id))).decode()
        return _Playlist(row, text)

    async def _playable(self, principal: Principal | None, playlist_id: uuid.UUID) -> _Playlist:
        state = await self._readable(principal, playlist_id)
        if state.row.hls_ready:
            return state
        tracks = await queries.tracks(self._pool, playlist_id)
        for n, track in enumerate(tracks, 1):
            if track.status == "failed":
                raise Conflict(
                    f"Track {n} could not be prepared ({track.error_message}); "
                    "replace or remove it with PUT"
                )
        waiting = sum(t.status == "processing" for t in tracks)
        raise Conflict(
            f"The playlist is being prepared ({waiting} of {len(tracks)} tracks still "
            "processing); retry in a few seconds",
            headers=_RETRY,
        )


def _is_ready(track: TrackRow) -> bool:
    return track.status == "ready"


#: The node's playlist media service.
PLAYLIST_MEDIA = web.AppKey("playlist_media", PlaylistMedia)
