"""Response bodies of the media routes: a stored object (or any async byte source) streamed,
or a whole representation in memory (`send_body`) with Content-Length, a strong ETag,
`If-None-Match` → 304, one `Range` → 206 (416 when unsatisfiable), a gzip variant for text
and HEAD (same headers, no body)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from aiohttp import web

from control.conditional import UNSATISFIABLE, ByteRange, parse_range, range_not_satisfiable
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
        await response.prepare(request)
        try:
            async for chunk in chunks:
                await response.write(chunk)
        except ConnectionResetError:  # aiohttp's ClientConnectionResetError included
            return response
    await response.write_eof()
    return response


def send_body(
    request: web.Request, body: Body, content_type: str, cache: str, *, vary: str | None = None
) -> web.Response:
    """`body` under RFC 9110's rules (module doc). A `Range` is served from the identity
    coding; without one, a client that accepts gzip gets the gzip variant when there is
    one. `vary` adds request headers the representation depends on (e.g. Authorization)."""
    headers = {"Content-Type": content_type, "Cache-Control": cache, "Accept-Ranges": "bytes"}
    request_headers = request.headers
    packed = body.gzipped
    if packed is not None:
        headers["Vary"] = f"Accept-Encoding, {vary}" if vary else "Accept-Encoding"
    elif vary:
        headers["Vary"] = vary
    range_header = request_headers.get("Range")
    if range_header is not None:
        if_range = request_headers.get("If-Range")
        if if_range is not None and if_range.strip() != body.etag:
            range_header = None  # changed since (or a date we cannot compare): send it all
    gzipped = (
        packed is not None
        and range_header is None
        and "gzip" in request_headers.get("Accept-Encoding", "")
    )
    etag = headers["ETag"] = body.gzip_etag if gzipped else body.etag
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None and _matches(if_none_match, (body.etag, body.gzip_etag)):
        del headers["Content-Type"]
        headers["ETag"] = etag
        return web.Response(status=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=packed, headers=headers)
    data = body.data
    wanted = parse_range(range_header, len(data)) if range_header is not None else None
    if wanted is None:
        return web.Response(body=data, headers=headers)
    if wanted == UNSATISFIABLE:
        del headers["Content-Type"]
        return range_not_satisfiable(len(data), headers)
    assert isinstance(wanted, ByteRange)
    headers["Content-Range"] = wanted.content_range
    return web.Response(status=206, body=data[wanted.start : wanted.end + 1], headers=headers)


def _matches(if_none_match: str, etags: tuple[str, ...]) -> bool:
    """RFC 9110 §13.1.2: weak comparison against any of our validators, or `*`."""
    if if_none_match.strip() == "*":
        return True
    sent = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return any(etag in sent for etag in etags)
