"""HTTP responses of a track's media: caching (RFC 9111) and the progressive files' byte
ranges (RFC 9110 §14, through `control.conditional`).

A public or unlisted track's media may be kept by shared caches (a CDN); a private one's
only by the caller's own, varying on `Authorization`. Playlists, waveform and artwork of a
ready track never change, but its visibility may: five minutes. Segments and files are
immutable under their names: a day.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from control.bodies import send_file
from control.conditional import ETAG
from control.tracks.service import Progressive, TracksService

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"  # RFC 8216 §4
SEGMENT_TYPE = "video/mp2t"  # RFC 8216 §3.2


def cache_control(private: bool, immutable: bool) -> str:
    scope = "private" if private else "public"
    return f"{scope}, max-age=86400, immutable" if immutable else f"{scope}, max-age=300"


async def file_response(
    request: web.Request, media: Progressive, tracks: TracksService
) -> web.StreamResponse:
    """The file: 200 whole, 206 one range, 416 unsatisfiable, 304 unchanged; HEAD gets
    the headers only."""
    headers: dict[str, str] = {
        hdrs.ACCEPT_RANGES: "bytes",
        ETAG: media.etag,
        hdrs.CACHE_CONTROL: cache_control(media.private, immutable=True),
    }
    if media.private:
        headers[hdrs.VARY] = "Authorization"
    return await send_file(
        request,
        headers,
        media.content_type,
        media.size,
        lambda start, end: tracks.read(media.key, start, end),
    )
