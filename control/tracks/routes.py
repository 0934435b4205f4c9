"""`/v1/tracks/{track_id}…`: upload a track, read, change and delete it, and play its media
(the adaptive master playlist, each rendition's HLS, the progressive files, the waveform and
the artwork). The list and search routes are the catalog's (`control.catalog`), declared
before these so `/v1/tracks/search` is never taken for a track id.

Scopes: uploading, changing and deleting need `playlists:write`, as uploads do. Reading and
playing need no token for public and unlisted tracks; a private track needs its owner's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from control.api import IF_NONE_MATCH, RANGE, Api, path_uuid, public_origin
from control.bodies import send_body
from control.forwarded import CLIENT_ADDRESS
from control.security import principal_key, principal_of
from control.tracks.form import track_form
from control.tracks.ingest import AUDIO_FIELD, NO_AUDIO
from control.tracks.media import PLAYLIST_TYPE, SEGMENT_TYPE, cache_control, file_response
from control.tracks.quotas import example_refusals, quota_out
from control.tracks.schemas import (
    QuotaOut,
    StreamQuery,
    TrackDeleteQuery,
    TrackFields,
    TrackOut,
    TrackUploadForm,
)
from control.tracks.service import TRACKS
from control.uploads.form import FormField
from control.uploads.service import IN_USE
from hls.ladder import ARTWORK_NAME, INDEX_NAME, MASTER_NAME, WAVEFORM_NAME
from mediaserver.errors import RateLimited

api = Api()
TRACKS_PATH = "/v1/tracks"
TRACK = "/v1/tracks/{track_id}"
HLS_DIR = "{hls_dir:[a-z0-9_]+}"
SEGMENT = r"{segment:segment[0-9][0-9][0-9]+\.(?:ts|m4s|mp4)}"
_MEDIA: dict[str, Any] = {
    "tag": "tracks",
    "auth": "optional",
    "rate": "streaming",
    "errors": (401, 404, 409, 429),
    "allow_head": True,
    "params": (IF_NONE_MATCH,),
    "also": {304: "Not modified (`If-None-Match`)"},
    "examples": {409: "Track is still processing; retry in a few seconds"},
}


@api.post(
    TRACKS_PATH,
    summary="Upload a track (any common audio format) with its metadata and artwork",
    description="multipart/form-data: `metadata` (JSON: title, artist, description, tags, "
    "genre, bpm, key, is_public or visibility, is_downloadable, license; title, artist, album, "
    "genre, year, BPM and key default to the file's tags), `audio` (MP3, WAV, FLAC, OGG Vorbis "
    "or Opus, M4A/AAC or AIFF, recognised by parsing it; at most TRACK_MAX_BYTES, 413 as soon "
    "as more arrives; at most TRACK_MAX_SECONDS long, TRACK_MIN_SAMPLE_RATE, MP3s at least "
    "TRACK_MIN_MP3_KBPS) and optionally `artwork` (a JPEG or PNG; it wins over the cover in "
    "the file). The caller's upload plan (`GET /v1/users/me/quota`) may lower the size and "
    "length limits and bounds the uploads a calendar month (UTC) and the storage held: 429 "
    "`Upload quota exceeded` (with `Retry-After` until the next month) or `Storage quota "
    "exceeded`, before the body is read. 201 with the track `processing`: poll "
    "`GET /v1/tracks/{track_id}` until it is `ready` (or `failed`, with `error_message`).",
    tag="tracks",
    response=TrackOut,
    status=201,
    scope="playlists:write",
    errors=(400, 401, 403, 413, 429),
    form=TrackUploadForm,
    file_field=AUDIO_FIELD,
    examples={
        400: (
            "Unsupported file type: send MP3, WAV, FLAC, OGG (Vorbis or Opus), M4A/AAC or AIFF. "
            "It looks like a PNG image.",
            NO_AUDIO,
            "Field 'bpm' must be at most 300.",
        ),
        413: "File is larger than the 100 MB limit.",
        429: (RateLimited(6).message, *example_refusals()),
    },
)
async def upload_track(request: web.Request) -> TrackOut:
    def form(audio_max: int) -> AsyncIterator[FormField]:
        return track_form(request, audio_max)

    return await request.app[TRACKS].create(principal_of(request), form, public_origin(request))


@api.get(
    "/v1/users/me/quota",
    summary="The caller's upload plan: its limits and what is used of it",
    description="Plans (set by an admin, `PATCH /v1/users/{user_id}` `upload_plan`): free "
    "50 MB / 6 min / 10 uploads a month / 1 GB, basic (the default) 100 MB / 10 min / 50 / "
    "10 GB, pro 500 MB / 30 min / 200 / 100 GB, artist 1 GB / unlimited / 1000 / 1 TB; the "
    "size and length are capped by TRACK_MAX_BYTES and TRACK_MAX_SECONDS. Admins are exempt.",
    tag="users",
    response=QuotaOut,
    errors=(401, 429),
)
async def my_quota(request: web.Request) -> QuotaOut:
    quota = await request.app[TRACKS].quota(principal_of(request))
    return quota_out(quota)


@api.get(
    TRACK,
    summary="A track: metadata, status, renditions, media URLs, stats and related tracks",
    description="Public and unlisted tracks: anyone; private ones: the owner or an admin "
    "(404 for anyone else). The lossless rendition is listed for the owner only.",
    tag="tracks",
    response=TrackOut,
    auth="optional",
    errors=(401, 404, 429),
)
async def get_track(request: web.Request) -> TrackOut:
    track_id = path_uuid(request, "track_id", "Track")
    origin = public_origin(request)
    return await request.app[TRACKS].detail(request.get(principal_key), track_id, origin)


@api.patch(
    TRACK,
    summary="Change a track's metadata (owner or admin)",
    tag="tracks",
    body=TrackFields,
    response=TrackOut,
    scope="playlists:write",
    errors=(400, 401, 403, 404, 429),
    body_example={"title": "Midnight Dreams (Remix)", "bpm": 130, "is_downloadable": True},
)
async def patch_track(request: web.Request, body: TrackFields) -> TrackOut:
    track_id = path_uuid(request, "track_id", "Track")
    origin = public_origin(request)
    return await request.app[TRACKS].update(principal_of(request), track_id, body, origin)


@api.delete(
    TRACK,
    summary="Delete a track and its media (owner or admin)",
    description="409 while a playlist or podcast episode uses it, unless `?force=true`. "
    "The track is then listed nowhere and its media are removed.",
    tag="tracks",
    query=TrackDeleteQuery,
    status=204,
    scope="playlists:write",
    errors=(400, 401, 403, 404, 409, 429),
    examples={409: IN_USE},
)
async def delete_track(request: web.Request, query: TrackDeleteQuery) -> None:
    track_id = path_uuid(request, "track_id", "Track")
    await request.app[TRACKS].delete(principal_of(request), track_id, query.force)


@api.get(
    TRACK + "/master.m3u8",
    summary="A track's adaptive HLS master playlist (every rendition, `EXT-X-STREAM-INF`)",
    description="Counts a play (once per listener and day).",
    produces=PLAYLIST_TYPE,
    **_MEDIA,
)
async def track_master(request: web.Request) -> web.Response:
    return await _object(request, MASTER_NAME, PLAYLIST_TYPE, count=True)


@api.get(
    TRACK + "/" + HLS_DIR + "/" + INDEX_NAME,
    summary="One rendition's HLS playlist",
    produces=PLAYLIST_TYPE,
    **_MEDIA,
)
async def track_rendition(request: web.Request) -> web.Response:
    name = f"{request.match_info['hls_dir']}/{INDEX_NAME}"
    return await _object(request, name, PLAYLIST_TYPE)


@api.get(
    TRACK + "/" + HLS_DIR + "/" + SEGMENT,
    summary="One segment of a rendition's HLS",
    produces=SEGMENT_TYPE,
    **_MEDIA,
)
async def track_segment(request: web.Request) -> web.Response:
    name = f"{request.match_info['hls_dir']}/{request.match_info['segment']}"
    return await _object(request, name, SEGMENT_TYPE, immutable=True)


@api.get(
    TRACK + "/waveform.json",
    summary="A track's waveform peaks (min/max pairs, audiowaveform's JSON)",
    produces="application/json",
    **_MEDIA,
)
async def track_waveform(request: web.Request) -> web.Response:
    return await _object(request, WAVEFORM_NAME, "application/json")


@api.get(
    TRACK + "/artwork.jpg",
    summary="A track's artwork thumbnail (404 when it has none)",
    produces="image/jpeg",
    **_MEDIA,
)
async def track_artwork(request: web.Request) -> web.Response:
    return await _object(request, ARTWORK_NAME, "image/jpeg")


@api.get(
    TRACK + "/stream",
    summary="One rendition as a single file, with byte ranges",
    description="`quality` low|medium|high|lossless (default medium) and optionally "
    "`format`: 404 naming the renditions there are when none matches. Lossless only for the "
    "owner or a downloadable track. One `Range` → 206. Counts a play (once per listener and "
    "day).",
    query=StreamQuery,
    produces="audio/mpeg",
    **{
        **_MEDIA,
        "params": (RANGE, IF_NONE_MATCH),
        "errors": (400, 401, 404, 409, 416, 429),
        "examples": {
            409: "Track is still processing; retry in a few seconds",
            416: "Range not satisfiable: the media is 160958 bytes long",
        },
        "also": {206: "The requested byte range", 304: "Not modified (`If-None-Match`)"},
    },
)
async def track_stream(request: web.Request, query: StreamQuery) -> web.StreamResponse:
    track_id = path_uuid(request, "track_id", "Track")
    principal, tracks = request.get(principal_key), request.app[TRACKS]
    media = await tracks.progressive(principal, track_id, query.quality, query.format)
    if request.method == "GET":
        await tracks.played(principal, track_id, request.app[CLIENT_ADDRESS](request))
    return await file_response(request, media, tracks)


async def _object(
    request: web.Request, name: str, content_type: str, *, count: bool = False,
    immutable: bool = False,
) -> web.Response:  # fmt: skip
    track_id = path_uuid(request, "track_id", "Track")
    principal, tracks = request.get(principal_key), request.app[TRACKS]
    body, private = await tracks.media(principal, track_id, name)
    if count and request.method == "GET":
        await tracks.played(principal, track_id, request.app[CLIENT_ADDRESS](request))
    vary = "Authorization" if private else None
    return send_body(request, body, content_type, cache_control(private, immutable), vary=vary)
