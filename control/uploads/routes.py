"""`/v1/uploads/audio*`: upload an MP3, follow its processing, list, delete, and play its HLS.

Scopes: uploads are the raw material of playlists (and podcast episodes), so uploading and
deleting need `playlists:write`, reading and playing need `playlists:read`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any

from aiohttp import web

from control.api import IF_NONE_MATCH, RANGE, Api, path_uuid, public_origin
from control.bodies import send_body, send_body_later
from control.media import MediaServices
from control.schemas import PageQuery
from control.security import principal_of
from control.tracks.quotas import example_refusals
from control.uploads.form import FILE_FIELD, FormField, form_fields
from control.uploads.schemas import DeleteQuery, UploadFields, UploadList, UploadOut
from control.uploads.service import IN_USE, UPLOADS, UploadsService
from hls.vod import (
    MANIFEST_CONTENT_TYPE,
    MANIFEST_NAME,
    SEGMENT_CONTENT_TYPE,
    SEGMENT_PATTERN,
    UNSUPPORTED,
)
from mediaserver.errors import RateLimited

api = Api()
UPLOADS_PATH = "/v1/uploads/audio"
UPLOAD = "/v1/uploads/audio/{upload_id}"
_MEDIA_ERRORS = (401, 403, 404, 409, 429)
#: What the HLS routes of an upload document besides their errors' defaults.
_HLS: dict[str, Any] = {
    "tag": "media",
    "scope": "playlists:read",
    "rate": "streaming",
    "errors": (*_MEDIA_ERRORS, 416),
    "allow_head": True,
    "params": (RANGE, IF_NONE_MATCH),
    "also": {206: "The requested byte range", 304: "Not modified (`If-None-Match`)"},
    "examples": {
        409: (
            "Upload is still processing; retry in a few seconds",
            "Upload could not be processed: the file has no MPEG audio frames",
        ),
        416: "Range not satisfiable: the media is 33840 bytes long",
    },
}
_BODY_RULES = (
    "`Content-Length` and a strong `ETag` (`If-None-Match` → 304); one `Range: bytes=…` → "
    "206 with `Content-Range` (416 when unsatisfiable); HEAD supported."
)


@api.post(
    UPLOADS_PATH,
    summary="Upload an MP3 to be turned into HLS",
    description="multipart/form-data: the MP3 in the field `file` (at most UPLOAD_MAX_BYTES, "
    "100 MB by default, or the caller's upload plan's file size if smaller: 413 as soon as "
    "more arrives), optional `title` and `artist` (default: the file's ID3 tags, then its "
    "name). The file is checked by parsing it, not by its "
    'Content-Type: anything else is 400 "Unsupported file type. Please upload an MP3.". '
    "Uploads are held to the caller's upload plan as tracks are (`GET /v1/users/me/quota`; "
    "both count toward its uploads a month and its storage): 429 `Upload quota exceeded` "
    "(with `Retry-After` until the next month) or `Storage quota exceeded`, before the body "
    "is read, and again with the file's real size; admins are exempt. "
    "The upload starts `processing`; poll `GET /v1/uploads/audio/{upload_id}` until it is "
    "`ready` (or `failed`, with `error_message`).",
    tag="uploads",
    response=UploadOut,
    status=201,
    scope="playlists:write",
    errors=(400, 401, 403, 413, 429),
    form=UploadFields,
    file_field=FILE_FIELD,
    examples={
        400: (
            UNSUPPORTED,
            "No file uploaded: send the MP3 in a form field named 'file'.",
            "Send the audio as multipart/form-data, in a form field named 'file'.",
        ),
        429: (RateLimited(6).message, *example_refusals()),
    },
)
async def upload_audio(request: web.Request) -> UploadOut:
    def form(max_file_bytes: int) -> AsyncIterator[FormField]:
        return form_fields(request, max_file_bytes)

    return await request.app[UPLOADS].upload(principal_of(request), form, public_origin(request))


@api.get(
    UPLOADS_PATH,
    summary="My uploads, newest first",
    tag="uploads",
    query=PageQuery,
    response=UploadList,
    scope="playlists:read",
    errors=(400, 401, 403, 429),
)
async def list_uploads(request: web.Request, query: PageQuery) -> UploadList:
    return await request.app[UPLOADS].list_mine(
        principal_of(request), query, public_origin(request)
    )


@api.get(
    UPLOAD,
    summary="An upload and its processing status (owner or admin)",
    description="`hls_manifest_url` plays once `status` is `ready`; `error_message` is set once it "
    "is `failed`. Another user's upload is 404.",
    tag="uploads",
    response=UploadOut,
    scope="playlists:read",
    errors=(401, 403, 404, 429),
)
async def get_upload(request: web.Request) -> UploadOut:
    upload_id = path_uuid(request, "upload_id", "Upload")
    return await request.app[UPLOADS].detail(
        principal_of(request), upload_id, public_origin(request)
    )


@api.delete(
    UPLOAD,
    summary="Delete an upload and its media (owner or admin)",
    description="409 while a playlist or podcast episode uses it, unless `?force=true`: then "
    "its playlist tracks turn `failed` (the playlists' `stream.*` answer 409 naming them until "
    "the track is replaced) and the episodes made from it are deleted (gone from their feeds).",
    tag="uploads",
    query=DeleteQuery,
    status=204,
    scope="playlists:write",
    errors=(400, 401, 403, 404, 409, 429),
    examples={409: IN_USE},
)
async def delete_upload(request: web.Request, query: DeleteQuery) -> None:
    upload_id = path_uuid(request, "upload_id", "Upload")
    await request.app[UPLOADS].delete(principal_of(request), upload_id, query.force)


@api.get(
    f"{UPLOAD}/hls/{MANIFEST_NAME}",
    summary="Play an upload: its VOD HLS playlist (owner or admin)",
    description="409 until the upload is `ready`: while it is `processing` (with `Retry-After`), "
    "or naming why it `failed`. Segment URIs (`segment000.ts`, …) are relative to it. "
    + _BODY_RULES,
    produces=MANIFEST_CONTENT_TYPE,
    **_HLS,
    bound=True,
)
def upload_manifest(
    media: MediaServices, request: web.Request
) -> web.Response | Awaitable[web.Response]:
    return _upload_hls(
        media.uploads, request, MANIFEST_NAME, MANIFEST_CONTENT_TYPE, "private, max-age=300"
    )


@api.get(
    UPLOAD + "/hls/{segment:" + SEGMENT_PATTERN + "}",
    summary="An upload's HLS segment (MPEG-TS; owner or admin)",
    description=_BODY_RULES,
    produces=SEGMENT_CONTENT_TYPE,
    **_HLS,
    bound=True,
)
def upload_segment(
    media: MediaServices, request: web.Request
) -> web.Response | Awaitable[web.Response]:
    # A segment's bytes never change under its name: cache it for a day.
    name, cache = request.match_info["segment"], "private, max-age=86400, immutable"
    return _upload_hls(media.uploads, request, name, SEGMENT_CONTENT_TYPE, cache)


def _upload_hls(
    uploads: UploadsService, request: web.Request, name: str, content_type: str, cache: str
) -> web.Response | Awaitable[web.Response]:
    """From memory in the steady state, without a coroutine (`control.envelope`)."""
    upload_id = path_uuid(request, "upload_id", "Upload")
    principal = principal_of(request)
    body = uploads.media_now(principal, upload_id, name)
    if body is None:
        return send_body_later(
            request, uploads.media(principal, upload_id, name), content_type, cache
        )
    return send_body(request, body, content_type, cache)
