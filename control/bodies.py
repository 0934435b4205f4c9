"""Response bodies of the media routes: a stored object (or any async byte source) streamed,
or a whole representation in memory (`send_body`) with Content-Length, a strong ETag, a gzip
variant for text, and the conditional and range requests of `control.conditional`
(`If-None-Match` → 304, one `Range` → 206, 416 when unsatisfiable, HEAD)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime

from aiohttp import hdrs, web
from multidict import CIMultiDict

from control.conditional import ETAG, ByteRange, respond
from control.envelope import prepare, static_headers
from control.mediacache import Body


async def send_stream(
    request: web.Request,
    chunks: AsyncGenerator[bytes, None],
    content_type: str,
    cache: str,
    *,
    chunked: bool = False,
) -> web.StreamResponse:
    """Stream `chunks` as the body. A client who leaves makes a write fail (or, with
    handler cancellation, cancels us): stop there; closing `chunks` stops the store reads."""
    response = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": cache})
    if chunked:
        response.enable_chunked_encoding()
    async with contextlib.aclosing(chunks):
        await prepare(request, response)
        try:
            async for chunk in chunks:
                await response.write(chunk)
        except ConnectionResetError:  # aiohttp's ClientConnectionResetError included
            return response
    await response.write_eof()
    return response


async def send_file(
    request: web.Request,
    headers: dict[str, str],
    content_type: str,
    size: int,
    read: Callable[[int, int], Awaitable[AsyncGenerator[bytes, None]]],
    *,
    last_modified: datetime | None = None,
    on_start: Callable[[ByteRange], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """A stored file under RFC 9110's rules (`control.conditional`): 200 whole, 206 one
    range, 416 unsatisfiable, 304 unchanged; HEAD gets the headers only. `headers` hold its
    `ETag` and caching; `read(start, end)` opens its bytes, before the headers go out (a
    missing object is still a clean 404), and `on_start` runs once they are open."""
    request_headers = request.headers
    outcome = respond(
        request,
        headers,
        (headers[ETAG],),
        size,
        last_modified,
        if_none_match=request_headers.get(hdrs.IF_NONE_MATCH),
        range_header=request_headers.get(hdrs.RANGE),
    )
    if isinstance(outcome, web.Response):
        return outcome
    part = outcome or ByteRange(0, size - 1, size)
    response = web.StreamResponse(status=200 if outcome is None else 206, headers=headers)
    response.content_type = content_type
    response.content_length = part.length
    if request.method == "HEAD" or part.length == 0:
        await prepare(request, response)
        return response
    async with contextlib.aclosing(await read(part.start, part.end)) as chunks:
        if on_start is not None:
            await on_start(part)
        await prepare(request, response)
        async for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response


def send_body(
    request: web.Request, body: Body, content_type: str, cache: str, *, vary: str | None = None
) -> web.Response:
    """`body` under RFC 9110's rules (`control.conditional`). A `Range` is served from the
    identity coding; without one, a client that accepts gzip gets the gzip variant when
    there is one. `vary` adds request headers the representation depends on (e.g.
    Authorization). The common request, with no `Range` and no `If-None-Match`, costs three
    header lookups and one `web.Response` made with headers built once per body
    (`_whole`)."""
    request_headers = request.headers
    range_header = request_headers.get(hdrs.RANGE)
    if_none_match = request_headers.get(hdrs.IF_NONE_MATCH)
    gzip = (
        body.gzipped is not None
        and range_header is None
        and "gzip" in request_headers.get(hdrs.ACCEPT_ENCODING, "")
    )
    data = body.gzipped if gzip and body.gzipped is not None else body.data
    if range_header is None and if_none_match is None:
        whole = body.headers.get((content_type, cache, vary, gzip))  # made by `_whole`
        if whole is None:
            whole = _whole(body, content_type, cache, vary, gzip)
        return web.Response(body=data, headers=whole)
    headers = _representation(body, content_type, cache, vary, gzip)
    etag = headers[ETAG]
    # The selected coding's ETag first; identity is acceptable to anyone (§12.5.3), so a
    # cache holding it gets a 304 for it.
    etags = (etag,) if etag == body.etag else (etag, body.etag)
    outcome = respond(
        request, headers, etags, len(data), if_none_match=if_none_match, range_header=range_header
    )
    if outcome is None:
        return web.Response(body=data, headers=headers)
    if isinstance(outcome, ByteRange):
        part = data[outcome.start : outcome.end + 1]
        return web.Response(status=206, body=part, headers=headers)
    return outcome


async def send_body_later(
    request: web.Request, body: Awaitable[Body], content_type: str, cache: str
) -> web.Response:
    """`send_body` of a body still to be read or checked (the slow path of a media route
    that answers from memory when it can: `control.envelope`)."""
    return send_body(request, await body, content_type, cache)


def _representation(
    body: Body, content_type: str, cache: str, vary: str | None, gzip: bool
) -> dict[str, str]:
    """The headers of `body` sent whole (`gzip`: its gzip variant)."""
    headers: dict[str, str] = {
        hdrs.CONTENT_TYPE: content_type,
        hdrs.CACHE_CONTROL: cache,
        hdrs.ACCEPT_RANGES: "bytes",
        ETAG: body.etag,
    }
    if body.gzipped is None:
        if vary:
            headers[hdrs.VARY] = vary
    else:
        headers[hdrs.VARY] = f"Accept-Encoding, {vary}" if vary else "Accept-Encoding"
        if gzip:
            assert body.gzip_etag is not None
            headers[ETAG] = body.gzip_etag
            headers[hdrs.CONTENT_ENCODING] = "gzip"
    return headers


def _whole(
    body: Body, content_type: str, cache: str, vary: str | None, gzip: bool
) -> CIMultiDict[str]:
    """`_representation` with the headers that depend on nothing in the request
    (`static_headers`), made once per body and way of sending it and kept in `body.headers`
    (where `send_body` looks first): a player's manifest or segment GET then builds no
    header by hand (the envelope adds the request id)."""
    headers = CIMultiDict(_representation(body, content_type, cache, vary, gzip))
    for name, value in static_headers(content_type) or ():
        headers.setdefault(name, value)
    if len(body.headers) >= _HEADER_SETS:
        body.headers.clear()
    body.headers[content_type, cache, vary, gzip] = headers
    return headers


#: At most this many header sets are kept per body (a body is sent a handful of ways).
_HEADER_SETS = 8
