"""HTTP responses of a track's media: caching (RFC 9111) and the progressive files' byte
ranges (RFC 9110 §14, through `control.conditional`).

A public or unlisted track's media may be kept by shared caches (a CDN); a private one's
only by the caller's own, varying on `Authorization`. Playlists, waveform and artwork of a
ready track never change, but its visibility may: five minutes. Segments and files are
immutable under their names: a day.
"""

from __future__ import annotations

import contextlib

from aiohttp import hdrs, web

from control.conditional import ETAG, ByteRange, respond
from control.envelope import prepare
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
    outcome = respond(
        request,
        headers,
        (media.etag,),
        media.size,
        if_none_match=request.headers.get(hdrs.IF_NONE_MATCH),
        range_header=request.headers.get(hdrs.RANGE),
    )
    if isinstance(outcome, web.Response):
        return outcome
    part = outcome or ByteRange(0, media.size - 1, media.size)
    response = web.StreamResponse(status=200 if outcome is None else 206, headers=headers)
    response.content_type = media.content_type
    response.content_length = part.length
    if request.method == "HEAD" or part.length == 0:
        await prepare(request, response)
        return response
    # Opened before the headers go out, so a missing object is still a clean 404.
    async with contextlib.aclosing(await tracks.read(media.key, part.start, part.end)) as chunks:
        await prepare(request, response)
        async for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response
