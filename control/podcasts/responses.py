"""HTTP responses of the feed and episode media: conditional requests (RFC 9110 §13) and
byte ranges (§14, decided by `control.conditional`).

Caching (RFC 9111): what anyone may fetch is `public`; what needed an access check (behind
the paywall, through a private feed URL, a scheduled episode its owner previews) is
`private` with `Vary: Authorization`, so a CDN or shared proxy never hands it to someone
else. Episode audio through a `?grant=` URL is `private, no-store`: the URL is the
credential. Feeds are `no-cache` either way (apps revalidate with `If-None-Match`)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from aiohttp import web
from multidict import CIMultiDictProxy

from control.bodies import range_not_satisfiable
from control.conditional import UNSATISFIABLE, ByteRange, parse_range
from control.podcasts.delivery import DeliveryService, EpisodeMedia, ServedFeed

FEED_TYPE = "application/rss+xml"
MEDIA_TYPE = "audio/mpeg"
#: Audio of an upload never changes (a new file is a new upload): a day in any cache.
PUBLIC_MEDIA = "public, max-age=86400"
#: Behind the paywall, asked for with a token: the caller's own cache only.
PRIVATE_MEDIA = "private, max-age=86400"
#: Behind the paywall, asked for with a `?grant=` URL: not even kept by the client.
GRANTED_MEDIA = "private, no-store"


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def not_modified(headers: CIMultiDictProxy[str], etag: str, last_modified: datetime) -> bool:
    """RFC 9110 §13.1.2/§13.1.3: `If-None-Match` (weak comparison) decides when present,
    else `If-Modified-Since` against `last_modified` (to the second)."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    since = _parse_date(headers.get("If-Modified-Since"))
    return since is not None and last_modified.replace(microsecond=0) <= since


def range_applies(headers: CIMultiDictProxy[str], etag: str, last_modified: datetime) -> bool:
    """RFC 9110 §13.1.5 `If-Range`: serve the range only if the validator still matches
    (strong comparison for an ETag, exact match for a date)."""
    if_range = headers.get("If-Range")
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith(('"', "W/")):
        return if_range == etag and not etag.startswith("W/")
    return _parse_date(if_range) == last_modified.replace(microsecond=0)


async def feed_response(request: web.Request, feed: ServedFeed) -> web.Response:
    """200 with the feed, or 304. Caches may keep a public feed but must revalidate."""
    headers = {
        "ETag": feed.etag,
        "Last-Modified": http_date(feed.last_modified),
        "Cache-Control": "private, no-cache" if feed.private else "public, no-cache",
    }
    if feed.private:
        headers["Vary"] = "Authorization"
    if not_modified(request.headers, feed.etag, feed.last_modified):
        return web.Response(status=304, headers=headers)
    body = await feed.body()
    return web.Response(body=body, content_type=FEED_TYPE, charset="utf-8", headers=headers)


async def media_response(
    request: web.Request,
    media: EpisodeMedia,
    delivery: DeliveryService,
    on_download: Callable[[], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """The episode's audio: 200 whole, 206 one range, 416 unsatisfiable, 304 unchanged;
    HEAD gets the same headers without a body. Several ranges get the whole file (200).
    `on_download` runs when a GET starts at the first byte and asks for more than a probe."""
    if media.external_url is not None:
        raise web.HTTPFound(media.external_url)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": media.etag,
        "Last-Modified": http_date(media.last_modified),
        "Cache-Control": media_cache_control(media),
    }
    if media.private:
        headers["Vary"] = "Authorization"
    if not_modified(request.headers, media.etag, media.last_modified):
        return web.Response(status=304, headers=headers)
    wanted = None
    if range_applies(request.headers, media.etag, media.last_modified):
        wanted = parse_range(request.headers.get("Range"), media.size)
    if wanted == UNSATISFIABLE:
        return range_not_satisfiable(media.size, headers)
    part = wanted if isinstance(wanted, ByteRange) else ByteRange(0, media.size - 1, media.size)
    response = web.StreamResponse(status=206 if wanted is not None else 200, headers=headers)
    response.content_type = MEDIA_TYPE
    response.content_length = part.length
    if wanted is not None:
        response.headers["Content-Range"] = part.content_range
    if request.method == "HEAD" or part.length == 0:
        await response.prepare(request)
        return response
    # Opened before the headers go out, so a missing object is still a clean 404.
    async with contextlib.aclosing(await delivery.read(media, part.start, part.end)) as chunks:
        if on_download is not None and part.start == 0 and part.length > 2:
            await on_download()
        await response.prepare(request)
        async for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response


def media_cache_control(media: EpisodeMedia) -> str:
    if not media.private:
        return PUBLIC_MEDIA
    return GRANTED_MEDIA if media.via_grant else PRIVATE_MEDIA


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
