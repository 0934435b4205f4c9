"""The `live.mp3` response: headers like a SHOUTcast/Icecast server, then the hub writes
(the stream's audio as the source sends it: MP3, or AAC with `Content-Type: audio/aac`).

The handler only prepares the response, hands the transport to the hub and waits until the
hub is done with the listener (client gone, dropped as too slow, stream stopped, or — for
a private or paid stream — the listener's access ended, which a watcher re-checks every
`LISTENER_RECHECK_SECONDS`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http import HttpVersion11

from relay.hub import Listener, StreamHub

log = logging.getLogger(__name__)
ACCESS_ENDED = "access ended"

#: Whether the listener may go on listening (False ends its response).
Recheck = Callable[[], Awaitable[bool]]


async def serve_listener(
    request: web.Request,
    hub: StreamHub,
    headers: dict[str, str],
    *,
    recheck: Recheck | None = None,
    every: float = 60.0,
    before_prepare: Callable[[web.StreamResponse], None] | None = None,
    content_type: str = "audio/mpeg",
) -> web.StreamResponse:
    """Stream the hub to this client until one side stops, or until `recheck` (awaited
    every `every` seconds) says its access ended.

    HTTP/1.1 clients get a chunked body, HTTP/1.0 players a close-delimited one; clients
    sending `Icy-MetaData: 1` get `icy-metaint` and in-band titles.
    """
    icy = request.headers.get("Icy-MetaData", "").strip() == "1"
    chunked = request.version >= HttpVersion11
    response = web.StreamResponse(headers=headers)
    response.content_type = content_type
    response.headers["Cache-Control"] = "no-cache, no-store"
    if icy:
        response.headers["icy-metaint"] = str(hub.metaint)
    if chunked:
        response.enable_chunked_encoding()
    else:
        response.force_close()
    if before_prepare is not None:  # the node's own headers (security, CORS, request id)
        before_prepare(response)
    await response.prepare(request)
    transport = request.transport
    if transport is None or transport.is_closing():
        return response
    _bound_kernel_buffer(transport)
    listener = hub.add_listener(transport, icy=icy, chunked=chunked)
    watcher = None
    if recheck is not None:
        watcher = asyncio.create_task(_watch(hub, listener, recheck, every))
    try:
        await listener.done
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        hub.remove_listener(listener)
    return response


async def _watch(hub: StreamHub, listener: Listener, recheck: Recheck, every: float) -> None:
    """End the listener once `recheck` refuses it. A check that fails (the database away)
    lets it go on: our outage is no reason to cut off someone who paid."""
    while True:
        await asyncio.sleep(every)
        try:
            allowed = await recheck()
        except Exception:
            log.warning("listener access re-check failed; it goes on", exc_info=True)
            continue
        if not allowed:
            hub.end_listener(listener, ACCESS_ENDED)
            return


#: Kernel send buffer per listener. Autotuning would let a stalled client park megabytes
#: in the kernel, hiding it from the hub's backlog check and costing memory per listener.
LISTENER_SNDBUF = 64 * 1024


def _bound_kernel_buffer(transport: object) -> None:
    sock = getattr(transport, "get_extra_info", lambda _name: None)("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LISTENER_SNDBUF)
        except OSError:  # not a TCP socket (e.g. a test transport); nothing to bound
            pass
