"""The `live.mp3` response: headers like a SHOUTcast/Icecast server, then the hub writes.

The handler only prepares the response, hands the transport to the hub and waits until the
hub is done with the listener (client gone, dropped as too slow, or stream stopped)."""

from __future__ import annotations

import socket

from aiohttp import web
from aiohttp.http import HttpVersion11

from relay.hub import StreamHub


async def serve_listener(
    request: web.Request, hub: StreamHub, headers: dict[str, str]
) -> web.StreamResponse:
    """Stream the hub to this client until one side stops.

    HTTP/1.1 clients get a chunked body, HTTP/1.0 players a close-delimited one; clients
    sending `Icy-MetaData: 1` get `icy-metaint` and in-band titles.
    """
    icy = request.headers.get("Icy-MetaData", "").strip() == "1"
    chunked = request.version >= HttpVersion11
    response = web.StreamResponse(headers=headers)
    response.content_type = "audio/mpeg"
    response.headers["Cache-Control"] = "no-cache, no-store"
    if icy:
        response.headers["icy-metaint"] = str(hub.metaint)
    if chunked:
        response.enable_chunked_encoding()
    else:
        response.force_close()
    await response.prepare(request)
    transport = request.transport
    if transport is None or transport.is_closing():
        return response
    _bound_kernel_buffer(transport)
    listener = hub.add_listener(transport, icy=icy, chunked=chunked)  # type: ignore[arg-type]
    try:
        await listener.done
    finally:
        hub.remove_listener(listener)
    return response


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
