"""HTTP responses of the feed and episode media; their conditional requests (RFC 9110 §13)
and byte ranges (§14) are those of every media route, `control.conditional`.

Caching (RFC 9111): what anyone may fetch is `public`; what needed an access check (behind
the paywall, through a private feed URL, a scheduled episode its owner previews) is
`private` with `Vary: Authorization`, so a CDN or shared proxy never hands it to someone
else. Episode audio through a `?grant=` URL is `private, no-store`: the URL is the
credential. Feeds are `no-cache` either way (apps revalidate with `If-None-Match`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from control.bodies import send_file
from control.conditional import ETAG, ByteRange, http_date, respond
from control.podcasts.delivery import DeliveryService, EpisodeMedia, ServedFeed

FEED_TYPE = "application/rss+xml"
MEDIA_TYPE = "audio/mpeg"
#: Audio of an upload never changes (a new file is a new upload): a day in any cache.
PUBLIC_MEDIA = "public, max-age=86400"
#: Behind the paywall, asked for with a token: the caller's own cache only.
PRIVATE_MEDIA = "private, max-age=86400"
#: Behind the paywall, asked for with a `?grant=` URL: not even kept by the client.
GRANTED_MEDIA = "private, no-store"


async def feed_response(request: web.Request, feed: ServedFeed) -> web.Response:
    """200 with the feed, or 304. Caches may keep a public feed but must revalidate. The
    whole feed always: `Range` is ignored (§14.2)."""
    headers: dict[str, str] = {
        ETAG: feed.etag,
        hdrs.LAST_MODIFIED: http_date(feed.last_modified),
        hdrs.CACHE_CONTROL: "private, no-cache" if feed.private else "public, no-cache",
    }
    if feed.private:
        headers[hdrs.VARY] = "Authorization"
    # No ranges, so no size: the body is rendered only when it is sent.
    ended = respond(
        request,
        headers,
        (feed.etag,),
        0,
        feed.last_modified,
        if_none_match=request.headers.get(hdrs.IF_NONE_MATCH),
        range_header=None,
    )
    if isinstance(ended, web.Response):
        return ended
    body = await feed.body()
    return web.Response(body=body, content_type=FEED_TYPE, charset="utf-8", headers=headers)


async def media_response(
    request: web.Request,
    media: EpisodeMedia,
    delivery: DeliveryService,
    on_download: Callable[[], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """The episode's audio: 200 whole, 206 one range, 416 unsatisfiable, 304 unchanged
    (`control.conditional`); HEAD gets the whole file's headers without a body. Several
    ranges get the whole file (200). `on_download` runs when a GET starts at the first byte
    and asks for more than a probe."""
    if media.external_url is not None:
        raise web.HTTPFound(media.external_url)
    headers: dict[str, str] = {
        hdrs.ACCEPT_RANGES: "bytes",
        ETAG: media.etag,
        # An upload's audio never changes: its creation time is a strong validator.
        hdrs.LAST_MODIFIED: http_date(media.last_modified),
        hdrs.CACHE_CONTROL: media_cache_control(media),
    }
    if media.private:
        headers[hdrs.VARY] = "Authorization"

    async def started(part: ByteRange) -> None:
        if on_download is not None and part.start == 0 and part.length > 2:
            await on_download()

    return await send_file(
        request,
        headers,
        MEDIA_TYPE,
        media.size,
        lambda start, end: delivery.read(media, start, end),
        last_modified=media.last_modified,
        on_start=started,
    )


def media_cache_control(media: EpisodeMedia) -> str:
    if not media.private:
        return PUBLIC_MEDIA
    return GRANTED_MEDIA if media.via_grant else PRIVATE_MEDIA
