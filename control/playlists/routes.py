"""`/v1/playlists*`: playlist CRUD (US-3.3 – US-3.6, US-11.1) and what players fetch —
`stream.m3u8` with its segments, and `stream.mp3` (US-3.7, US-3.8)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from control.api import GRANT, IF_NONE_MATCH, RANGE, Api, path_uuid, public_origin
from control.bodies import send_body, send_stream
from control.media import MediaServices
from control.playlists.delivery import PLAYLIST_MEDIA, Media
from control.playlists.schemas import (
    PlaylistCreated,
    PlaylistIn,
    PlaylistList,
    PlaylistOut,
    PlaylistUpdated,
)
from control.playlists.service import PLAYLISTS
from control.schemas import PageQuery
from control.security import principal_key, principal_of
from hls.vod import MANIFEST_CONTENT_TYPE, SEGMENT_CONTENT_TYPE, SEGMENT_PATTERN

api = Api()
PLAYLISTS_PATH = "/v1/playlists"
PLAYLIST = "/v1/playlists/{playlist_id}"
MP3_TYPE = "audio/mpeg"
EXAMPLE_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
_ACCESS = (
    " Public playlists play for anyone; private ones need a token with `playlists:read`; "
    "monetized ones an active subscription (owners and admins always pass)."
)
_READ_REFUSED = ("Your token lacks the 'playlists:read' scope", "Subscription required")
_OWNER_REFUSED = (
    "Your token lacks the 'playlists:write' scope",
    "Only the playlist's owner or an admin can do this",
)
_PLAYLIST_EXAMPLE = {
    "title": "Chill Evening Vibes",
    "description": "Smooth tracks for an evening stream.",
    "tracks": [{"source_type": "upload", "upload_id": EXAMPLE_ID, "title": "Track One"}],
    "visibility": "public",
}
_TRACK_REFUSED = (
    "Track 1: upload 3fa85f64-5717-4562-b3fc-2c963f66afa6 is not one of your uploads",
    "Track 2: the track URL did not answer with valid HTTP",
)
_MEDIA: dict[str, Any] = {
    "tag": "media",
    "auth": "optional",
    "rate": "streaming",
    "errors": (401, 403, 404, 409, 429),
    "examples": {
        401: "This playlist is private: sign in to listen",
        403: _READ_REFUSED,
        409: (
            "The playlist is being prepared (1 of 2 tracks still processing); retry in a few "
            "seconds",
            "Track 2 could not be prepared (Unsupported file type. Please upload an MP3.); "
            "replace or remove it with PUT",
        ),
    },
}
#: The manifest and segments: whole bodies from memory.
_HLS: dict[str, Any] = {
    **_MEDIA,
    "errors": (401, 403, 404, 409, 416, 429),
    "allow_head": True,
    "params": (RANGE, IF_NONE_MATCH),
    "also": {206: "The requested byte range", 304: "Not modified (`If-None-Match`)"},
    "examples": {
        **_MEDIA["examples"],
        416: "Range not satisfiable: the media is 33840 bytes long",
    },
}
_BODY_RULES = (
    "`Content-Length` and a strong `ETag` (`If-None-Match` → 304); one `Range: bytes=…` → "
    "206 with `Content-Range` (416 when unsatisfiable); HEAD supported."
)


@api.post(
    PLAYLISTS_PATH,
    summary="Create an on-demand playlist of uploads and external MP3s",
    description="Uploads must be yours and `ready`; external URLs must answer HEAD with 200 "
    "and `audio/mpeg` (else 422). External tracks are fetched once and segmented like "
    "uploads; `hls_ready` turns true when every track is ready.",
    tag="playlists",
    body=PlaylistIn,
    response=PlaylistCreated,
    status=201,
    scope="playlists:write",
    errors=(400, 401, 403, 422, 429),
    examples={422: _TRACK_REFUSED},
    body_example=_PLAYLIST_EXAMPLE,
)
async def create_playlist(request: web.Request, body: PlaylistIn) -> PlaylistCreated:
    return await request.app[PLAYLISTS].create(principal_of(request), body, public_origin(request))


@api.get(
    PLAYLISTS_PATH,
    summary="My playlists, newest first",
    tag="playlists",
    query=PageQuery,
    response=PlaylistList,
    scope="playlists:read",
    errors=(400, 401, 403, 429),
)
async def list_playlists(request: web.Request, query: PageQuery) -> PlaylistList:
    return await request.app[PLAYLISTS].list_mine(
        principal_of(request), query, public_origin(request)
    )


@api.get(
    PLAYLIST,
    summary="A playlist and its tracks",
    description="Private playlists need a token with `playlists:read` and, when monetized, "
    "an active subscription; owners and admins always see theirs.",
    tag="playlists",
    response=PlaylistOut,
    auth="optional",
    errors=(401, 403, 404, 429),
    examples={403: _READ_REFUSED},
)
async def get_playlist(request: web.Request) -> PlaylistOut:
    playlist_id = path_uuid(request, "playlist_id", "Playlist")
    playlists = request.app[PLAYLISTS]
    return await playlists.detail(request.get(principal_key), playlist_id, public_origin(request))


@api.put(
    PLAYLIST,
    summary="Replace a playlist: metadata and tracks (owner or admin)",
    description="The whole playlist, as on creation, in one transaction: when a track is "
    "refused (422) nothing changes. Tracks kept keep their `track_id`.",
    tag="playlists",
    body=PlaylistIn,
    response=PlaylistUpdated,
    scope="playlists:write",
    errors=(400, 401, 403, 404, 422, 429),
    examples={403: _OWNER_REFUSED, 422: _TRACK_REFUSED},
    body_example=_PLAYLIST_EXAMPLE,
)
async def replace_playlist(request: web.Request, body: PlaylistIn) -> PlaylistUpdated:
    playlist_id = path_uuid(request, "playlist_id", "Playlist")
    return await request.app[PLAYLISTS].replace(principal_of(request), playlist_id, body)


@api.delete(
    PLAYLIST,
    summary="Delete a playlist (owner or admin)",
    description="Soft delete: its streams answer 404 at once.",
    tag="playlists",
    status=204,
    scope="playlists:write",
    errors=(401, 403, 404, 429),
    examples={403: _OWNER_REFUSED},
)
async def delete_playlist(request: web.Request) -> None:
    playlist_id = path_uuid(request, "playlist_id", "Playlist")
    await request.app[PLAYLISTS].delete(principal_of(request), playlist_id)


@api.get(
    f"{PLAYLIST}/stream.m3u8",
    summary="Listen: the playlist as one HLS VOD playlist",
    description="The tracks' segments in order, `#EXT-X-DISCONTINUITY` between tracks. "
    "409 (with `Retry-After`) until every track is ready. Each GET answered (200, or 304 to "
    "`If-None-Match`) counts one play; HEAD does not. " + _BODY_RULES + _ACCESS,
    produces=MANIFEST_CONTENT_TYPE,
    **_HLS,
    bound=True,
)
def playlist_m3u8(
    media: MediaServices, request: web.Request
) -> web.Response | Awaitable[web.Response]:
    """From memory in the steady state (no coroutine: `control.envelope`)."""
    playlist_id = path_uuid(request, "playlist_id", "Playlist")
    playlists, origin = media.playlists, public_origin(request, media.settings)
    play = request.method == "GET"
    body = playlists.manifest_now(playlist_id, origin, play=play)
    if body is None:
        later = playlists.manifest(request.get(principal_key), playlist_id, origin, play=play)
        return _send_later(request, later, _send_manifest)
    return send_body(request, body, MANIFEST_CONTENT_TYPE, _MANIFEST_CACHE[True])


async def _send_later(
    request: web.Request,
    media: Awaitable[Media],
    send: Callable[[web.Request, Media], web.Response],
) -> web.Response:
    """The slow path of a media route: `send` once `media` is there."""
    return send(request, await media)


def _send_manifest(request: web.Request, manifest: Media) -> web.Response:
    cache = _MANIFEST_CACHE[manifest.public]
    return send_body(request, manifest.body, MANIFEST_CONTENT_TYPE, cache)


#: Revalidated on every load: it counts plays, and private playlists' grants expire; and
#: those grants are the listener's, kept from shared caches.
_MANIFEST_CACHE = {True: "no-cache", False: "private, no-cache"}


@api.get(
    PLAYLIST + "/hls/{track_id}/{segment:" + SEGMENT_PATTERN + "}",
    summary="A playlist's HLS segment (MPEG-TS)",
    description="With the `grant` the manifest adds for private or monetized playlists, or "
    "under the playlist's access rules. " + _BODY_RULES,
    produces=SEGMENT_CONTENT_TYPE,
    **{
        **_HLS,
        "params": (GRANT, *_HLS["params"]),
        "examples": {
            **_HLS["examples"],
            403: (*_READ_REFUSED, "This segment link has expired; reload the playlist"),
            404: ("Playlist not found", "Segment not found"),
        },
    },
    bound=True,
)
def playlist_segment(
    media: MediaServices, request: web.Request
) -> web.Response | Awaitable[web.Response]:
    """From memory in the steady state (no coroutine: `control.envelope`)."""
    playlist_id = path_uuid(request, "playlist_id", "Playlist")
    track_id = path_uuid(request, "track_id", "Segment")
    playlists, name = media.playlists, request.match_info["segment"]
    grant = request.query.get("grant")
    body = playlists.segment_now(playlist_id, track_id, name, grant)
    if body is None:
        principal = request.get(principal_key)
        later = playlists.segment(principal, playlist_id, track_id, name, grant)
        return _send_later(request, later, _send_segment)
    return send_body(request, body, SEGMENT_CONTENT_TYPE, _SEGMENT_CACHE[True])


def _send_segment(request: web.Request, segment: Media) -> web.Response:
    # A segment's bytes never change under its URL.
    cache = _SEGMENT_CACHE[segment.public]
    return send_body(request, segment.body, SEGMENT_CONTENT_TYPE, cache)


_SEGMENT_CACHE = {
    public: f"{'public' if public else 'private'}, max-age=86400, immutable"
    for public in (False, True)
}


@api.get(
    f"{PLAYLIST}/stream.mp3",
    summary="Listen: the playlist as one continuous MP3",
    description="The tracks' MP3 frames in order (no ID3 tags or header frames between "
    "them), chunked. 409 (with `Retry-After`) until every track is ready." + _ACCESS,
    produces=MP3_TYPE,
    **_MEDIA,
)
async def playlist_mp3(request: web.Request) -> web.StreamResponse:
    playlist_id = path_uuid(request, "playlist_id", "Playlist")
    chunks = await request.app[PLAYLIST_MEDIA].mp3(request.get(principal_key), playlist_id)
    return await send_stream(request, chunks, MP3_TYPE, "no-cache", chunked=True)
