"""Now-playing routes: song history, the stations on air (JSON, live feeds), Icecast's
status JSON and playlist files for players."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web

from control.api import Api, path_uuid
from control.envelope import ENVELOPE
from control.nowplaying.formats import icecast_status, m3u, pls
from control.nowplaying.schemas import (
    EventsQuery,
    HistoryQuery,
    IcecastStatus,
    NowPlaying,
    SongHistory,
)
from control.nowplaying.service import CACHE_SECONDS, NOWPLAYING
from control.nowplaying.sse import frame, serve_events
from control.security import principal_key
from control.streams.routes import READ_REFUSED
from control.streams.service import STREAMS
from mediaserver.config import SETTINGS

api = Api()
STREAM = "/v1/streams/{stream_id}"
SERVER_ID = "mediaserver (Icecast 2.4 compatible)"
_EVENTS = (
    "Server-sent events (`text/event-stream`): first a `nowplaying` event (the body of "
    "`GET /v1/nowplaying` for what it covers), then `title` (`{stream_id, song}`, song null "
    "when the source stops naming one) and `listeners` (`{stream_id, listeners}`) as they "
    "change, and a comment line every 15 s. A client that falls far behind is disconnected "
    "(an `EventSource` reconnects by itself)."
)
#: Polled by widgets: shared caches may keep an answer as long as the node does.
_POLLED = {"Cache-Control": f"public, max-age={max(1, round(CACHE_SECONDS))}"}


@api.get(
    f"{STREAM}/history",
    summary="A stream's song history, newest first",
    description="Each title the source announced, split into artist and title when it "
    "reads `Artist - Title`, with when it started and ended. Same access rules as the "
    "stream's status.",
    tag="nowplaying",
    query=HistoryQuery,
    response=SongHistory,
    auth="optional",
    errors=(400, 401, 403, 404, 429),
    examples={403: READ_REFUSED},
)
async def stream_history(request: web.Request, query: HistoryQuery) -> SongHistory:
    stream_id = path_uuid(request, "stream_id", "Stream")
    return await request.app[NOWPLAYING].history(request.get(principal_key), stream_id, query)


@api.get(
    "/v1/nowplaying",
    summary="Every public stream on air now, in one call",
    description="Title (artist and title when the source sends `Artist - Title`), "
    "listeners across the cluster, since when it is live, genre and links, most listened "
    "first. Cheap to poll: answers are reused for half a second.",
    tag="nowplaying",
    response=NowPlaying,
    auth="none",
    errors=(429,),
)
async def now_playing(request: web.Request) -> web.Response:
    body = (await request.app[NOWPLAYING].now_playing()).model_dump_json()
    return web.Response(text=body, content_type="application/json", headers=_POLLED)


@api.get(
    "/v1/nowplaying/events",
    summary="Live feed of every public stream on air (server-sent events)",
    description=_EVENTS,
    tag="nowplaying",
    auth="none",
    rate="streaming",
    produces="text/event-stream",
    query=EventsQuery,
    errors=(400, 429),
)
async def now_playing_events(request: web.Request, query: EventsQuery) -> web.StreamResponse:
    service = request.app[NOWPLAYING]

    async def first() -> bytes:
        return frame("nowplaying", json.loads((await service.now_playing()).model_dump_json()))

    decorate = functools.partial(request.app[ENVELOPE].decorate, request)
    subscription = service.subscribe(None)
    return await serve_events(
        request, service.bus, subscription, first, decorate, max_events=query.max_events
    )


@api.get(
    f"{STREAM}/events",
    summary="Live feed of one stream (server-sent events)",
    description=f"{_EVENTS} Same access rules as the stream's status.",
    tag="nowplaying",
    auth="optional",
    rate="streaming",
    produces="text/event-stream",
    query=EventsQuery,
    errors=(400, 401, 403, 404, 429),
    examples={403: READ_REFUSED},
)
async def stream_events(request: web.Request, query: EventsQuery) -> web.StreamResponse:
    stream_id = path_uuid(request, "stream_id", "Stream")
    service, principal = request.app[NOWPLAYING], request.get(principal_key)

    async def first() -> bytes:
        station = await service.station(principal, stream_id)
        return frame("nowplaying", json.loads(station.model_dump_json()))

    decorate = functools.partial(request.app[ENVELOPE].decorate, request)
    subscription = service.subscribe(stream_id)
    return await serve_events(
        request, service.bus, subscription, first, decorate, max_events=query.max_events
    )


@api.get(
    "/status-json.xsl",
    summary="Icecast 2.4's status JSON, for widgets and directories written for Icecast",
    description="`icestats.source` lists the public streams on air: absent with none, an "
    "object with one, a list with several, as Icecast 2.4 does.",
    tag="nowplaying",
    response=IcecastStatus,
    auth="none",
    errors=(429,),
)
async def icecast_status_json(request: web.Request) -> web.Response:
    service, settings = request.app[NOWPLAYING], request.app[SETTINGS]
    host = urlsplit(settings.base_url).hostname or "localhost"
    stations = (await service.now_playing()).stations
    body = icecast_status(stations, host, service.started_at, SERVER_ID)
    return web.json_response(body, headers=_POLLED)


async def _playlist_file(
    request: web.Request, render: Callable[[str, str], str], content_type: str
) -> web.Response:
    """A playlist file of the stream's MP3 link: its play link (with a grant when the
    caller may listen to a private or paid stream), else the plain one. Never kept by a
    shared cache: it may carry the caller's grant."""
    stream_id = path_uuid(request, "stream_id", "Stream")
    detail = await request.app[STREAMS].detail(request.get(principal_key), stream_id)
    url = detail.play_urls.mp3 if detail.play_urls is not None else detail.live_mp3_url
    text = render(detail.name, url)
    return web.Response(text=text, content_type=content_type, headers=_NO_STORE)


@api.get(
    f"{STREAM}/listen.m3u",
    summary="An M3U playlist file that opens the stream in any player",
    tag="nowplaying",
    auth="optional",
    produces="audio/x-mpegurl",
    errors=(401, 403, 404, 429),
    examples={403: READ_REFUSED},
)
async def listen_m3u(request: web.Request) -> web.Response:
    return await _playlist_file(request, m3u, "audio/x-mpegurl")


@api.get(
    f"{STREAM}/listen.pls",
    summary="A PLS playlist file that opens the stream in any player",
    tag="nowplaying",
    auth="optional",
    produces="audio/x-scpls",
    errors=(401, 403, 404, 429),
    examples={403: READ_REFUSED},
)
async def listen_pls(request: web.Request) -> web.Response:
    return await _playlist_file(request, pls, "audio/x-scpls")


_NO_STORE = {"Cache-Control": "private, no-store"}
