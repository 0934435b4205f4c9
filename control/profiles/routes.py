"""`PUT /v1/users/me/profile`, its avatar, and `GET /v1/djs/{dj_id}` (public)."""

from __future__ import annotations

from aiohttp import web

from control.api import Api, path_uuid
from control.profiles.avatar import INVALID_IMAGE, MAX_BYTES
from control.profiles.schemas import DjPage, ProfileIn, ProfileOut
from control.profiles.service import NEEDS_PROFILE, NO_AVATAR, NO_PROFILE, PROFILES
from control.security import principal_of
from mediaserver.errors import InvalidInput, TooLarge

api = Api()
TOO_LARGE = "The avatar image is over 5 MiB"


@api.put(
    "/v1/users/me/profile",
    summary="Create or replace the caller's DJ profile",
    description="`stage_name`, `bio` (plain text, at most 2000 characters), `genres` (up to "
    "10), `links` (up to 10, http/https only). The avatar is set apart.",
    tag="profiles",
    body=ProfileIn,
    response=ProfileOut,
    role="dj",
    errors=(400, 401, 403, 429),
)
async def put_profile(request: web.Request, body: ProfileIn) -> ProfileOut:
    return await request.app[PROFILES].put(principal_of(request), body)


@api.put(
    "/v1/users/me/profile/avatar",
    summary="Upload the profile's avatar",
    description="The body is the image itself (PNG, JPEG or WebP, at most 5 MiB; 413 beyond). "
    "It is scaled to fit 512×512 and stored as a JPEG: `avatar_url` in the profile.",
    tag="profiles",
    response=ProfileOut,
    role="dj",
    errors=(400, 401, 403, 404, 413, 429),
    examples={
        400: INVALID_IMAGE,
        404: NEEDS_PROFILE,
        413: TOO_LARGE,
    },
)
async def put_avatar(request: web.Request) -> ProfileOut:
    image = await _image(request)
    return await request.app[PROFILES].set_avatar(principal_of(request), image)


@api.get(
    "/v1/djs/{dj_id}",
    summary="A DJ's public profile, with their on-air streams, playlists and podcasts",
    tag="profiles",
    response=DjPage,
    auth="optional",
    # Optional, but a token that is sent is checked: a signed-out or deleted account's is 401.
    errors=(401, 404, 429),
    examples={404: NO_PROFILE},
)
async def dj_page(request: web.Request) -> DjPage:
    return await request.app[PROFILES].page(path_uuid(request, "dj_id", "DJ"))


@api.get(
    "/v1/djs/{dj_id}/avatar.jpg",
    summary="A DJ's avatar (JPEG)",
    tag="profiles",
    auth="none",
    produces="image/jpeg",
    errors=(404, 429),
    examples={404: NO_AVATAR},
)
async def dj_avatar(request: web.Request) -> web.Response:
    data, etag = await request.app[PROFILES].avatar(path_uuid(request, "dj_id", "DJ"))
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, content_type="image/jpeg", headers=headers)


async def _image(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BYTES:
        raise TooLarge(TOO_LARGE)
    data = await request.content.read(MAX_BYTES + 1)
    while len(data) <= MAX_BYTES and not request.content.at_eof():
        data += await request.content.read(MAX_BYTES + 1 - len(data))
    if len(data) > MAX_BYTES:
        raise TooLarge(TOO_LARGE)
    if not data:
        raise InvalidInput("Send the image as the request body")
    return data
