"""Streaming a stored object (or any async byte source) as a response body."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from aiohttp import web


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
