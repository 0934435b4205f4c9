"""What podcast apps fetch: the feed and episode media, under `/v1/podcasts/{id}` and, for
a verified custom domain attached to a podcast, at `https://{domain}/rss.xml` and
`https://{domain}/episodes/{episode_id}/media.mp3` (the podcast is found from `Host`)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from control.api import GRANT, IF_NONE_MATCH, RANGE, Api, Param, path_uuid
from control.domains.service import CUSTOM_DOMAINS, NOT_HOSTED
from control.podcasts.delivery import DELIVERY
from control.podcasts.responses import FEED_TYPE, MEDIA_TYPE, feed_response, media_response
from control.security import principal_key

api = Api()
_HOSTED = " 404 unless `Host` is a verified domain attached to a podcast."
HOST = Param(
    "Host", "header", "A verified custom domain attached to a podcast.", "podcasts.example.com"
)
#: What podcast apps fetch: anyone may ask (the paywall decides), rate-limited per IP.
_PUBLIC_MEDIA: dict[str, Any] = {
    "tag": "media",
    "auth": "optional",
    "rate": "streaming",
    "allow_head": True,
    "also": {304: "Not modified (`If-None-Match`, `If-Modified-Since`)"},
    "examples": {
        401: "Invalid access token",
        403: (
            "Subscription required",
            "This private feed URL's account no longer exists",
        ),
    },
}
_FEED: dict[str, Any] = {
    **_PUBLIC_MEDIA,
    "produces": FEED_TYPE,
    "errors": (401, 403, 404, 429),
    "params": (GRANT, IF_NONE_MATCH),
    "description": "RSS 2.0 with the itunes, podcast (Podcasting 2.0), atom and content "
    "namespaces; episodes appear at their publication date. `ETag`/`Last-Modified` with "
    "`If-None-Match`/`If-Modified-Since` → 304; HEAD supported. Public unless the podcast "
    "or an episode in the feed is monetized: then 403 `Subscription required` without an "
    "active subscription, with or without a token (401 only for an invalid token), and "
    "`Cache-Control: private`. `?grant=` (a private feed URL from `GET …/feed-url`) stands "
    "in for the token: its enclosures then carry the grant too; behind the paywall, 403 "
    "once the grant's user may no longer read the feed (subscription cancelled or "
    "expired), the grant has expired, or the account changed its password or was deleted. "
    "On a free feed such a grant is ignored: the public feed.",
}
_MEDIA: dict[str, Any] = {
    **_PUBLIC_MEDIA,
    "produces": MEDIA_TYPE,
    "errors": (401, 403, 404, 416, 429),
    "params": (GRANT, RANGE, IF_NONE_MATCH),
    "also": {
        **_PUBLIC_MEDIA["also"],
        206: "The requested byte range",
        302: "An external episode's media: its URL (`Location`)",
    },
    "examples": {
        **_PUBLIC_MEDIA["examples"],
        404: ("Episode not found", "The episode's media is no longer available"),
        416: "Range not satisfiable: the media is 33840 bytes long",
    },
    "description": "The enclosure of upload-based episodes and of paywalled external ones "
    "(external episodes redirect to their URL). `Range: bytes=…` → 206 with "
    "`Content-Range`, 416 when unsatisfiable; several ranges → 200 with the whole file; "
    "`If-Range`, `If-None-Match`; HEAD supported. Same paywall as the feed for monetized "
    "episodes, and the same `?grant=`. Free episodes are `Cache-Control: public`; "
    "paywalled ones `private` (`private, no-store` through a grant).",
}


@api.get("/v1/podcasts/{podcast_id}/rss.xml", summary="The podcast's RSS feed", **_FEED)
async def podcast_feed(request: web.Request) -> web.Response:
    podcast_id = path_uuid(request, "podcast_id", "Podcast")
    return await _feed(request, podcast_id)


@api.get(
    "/v1/podcasts/{podcast_id}/episodes/{episode_id}/media.mp3",
    summary="An episode's audio, with byte ranges",
    **_MEDIA,
)
async def episode_media(request: web.Request) -> web.StreamResponse:
    podcast_id = path_uuid(request, "podcast_id", "Podcast")
    return await _media(request, podcast_id)


@api.get(
    "/rss.xml",
    summary="The feed of the podcast attached to this custom domain (Host)",
    **{
        **_FEED,
        "description": _FEED["description"] + _HOSTED,
        "params": (HOST, *_FEED["params"]),
        "examples": {**_FEED["examples"], 404: NOT_HOSTED},
    },
)
async def domain_feed(request: web.Request) -> web.Response:
    podcast_id = await request.app[CUSTOM_DOMAINS].served_podcast(request.headers.get("Host"))
    return await _feed(request, podcast_id, at_custom_domain=True)


@api.get(
    "/episodes/{episode_id}/media.mp3",
    summary="An episode's audio, at the podcast's custom domain (Host)",
    **{
        **_MEDIA,
        "description": _MEDIA["description"] + _HOSTED,
        "params": (HOST, *_MEDIA["params"]),
        "examples": {**_MEDIA["examples"], 404: (NOT_HOSTED, "Episode not found")},
    },
)
async def domain_episode_media(request: web.Request) -> web.StreamResponse:
    podcast_id = await request.app[CUSTOM_DOMAINS].served_podcast(request.headers.get("Host"))
    return await _media(request, podcast_id)


async def _feed(
    request: web.Request, podcast_id: uuid.UUID, at_custom_domain: bool = False
) -> web.Response:
    feed = await request.app[DELIVERY].feed(
        request.get(principal_key),
        podcast_id,
        grant=request.query.get("grant"),
        at_custom_domain=at_custom_domain,
    )
    return await feed_response(request, feed)


async def _media(request: web.Request, podcast_id: uuid.UUID) -> web.StreamResponse:
    episode_id = path_uuid(request, "episode_id", "Episode")
    delivery = request.app[DELIVERY]
    media = await delivery.media(
        request.get(principal_key), podcast_id, episode_id, request.query.get("grant")
    )
    return await media_response(request, media, delivery, lambda: delivery.count_download(media))
