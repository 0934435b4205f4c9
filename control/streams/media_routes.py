"""Listener routes of live streams: `live.mp3`, `live.m3u8` and its segments.

Access rules (visibility, paywall) are the streams service's. Players that cannot send an
`Authorization` header (Safari's native HLS, VLC, `<audio>`) open `live.mp3`/`live.m3u8`
with the signed `?grant=` of the `play_urls` that `GET /v1/streams/{id}` hands out (bound
to the user it was issued to, whose access is re-checked on each use), and the segments of
a playlist served to an authorised client carry a short-lived segment grant
(`control.streams.grants`)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable
from dataclasses import replace
from typing import Any, NamedTuple

from aiohttp import web

from control.access import is_open
from control.api import GRANT, Api, Param, path_uuid
from control.bodies import send_body
from control.envelope import ENVELOPE
from control.forwarded import CLIENT_ADDRESS
from control.media import MediaServices
from control.mediacache import Body
from control.security import principal_key
from control.streams.grants import GRANTS
from control.streams.queries import StreamRow
from control.streams.service import STREAMS
from hls.playlist import render_media_playlist
from mediaserver.cluster import CLUSTER
from mediaserver.config import SETTINGS
from mediaserver.errors import NotFound
from relay.listener import serve_listener
from relay.manager import Relay

api = Api()
#: US-2.7: "404 Not Found if stream_id invalid or relay down" (also for the playlist: a
#: frozen one would keep players looping on stale segments).
RELAY_DOWN = "Relay is down: the stream's source is offline"
_MEDIA_ERRORS = (401, 403, 404, 429)
#: What the live routes document besides their errors' defaults.
_LIVE: dict[str, Any] = {
    "tag": "media",
    "auth": "optional",
    "rate": "streaming",
    "errors": _MEDIA_ERRORS,
    "params": (GRANT,),
    "also": {307: "Relayed by another node of the cluster: the same URL there (`Location`)"},
    "examples": {
        401: "This stream is private: sign in to listen",
        403: (
            "Subscription required",
            "This play link is invalid or has expired; fetch the stream again",
        ),
        404: ("Stream not found", "Stream is not live", RELAY_DOWN),
    },
}
ICY_METADATA = Param(
    "Icy-MetaData",
    "header",
    "`1`: interleave ICY metadata (the current title) every `icy-metaint` bytes of audio, "
    "as SHOUTcast and Icecast do (`ICY_METAINT`); the response then says `icy-metaint`.",
    "1",
    {"type": "string", "enum": ["0", "1"]},
)
#: A live segment's bytes never change under its number: cached for a day; one of a private
#: or paid stream (opened by a grant or a token) by the player only. Indexed by "open".
_SEGMENT_HEADERS = {
    public: {
        "Content-Type": "video/mp2t",
        "Cache-Control": f"{'public' if public else 'private'}, max-age=86400, immutable",
    }
    for public in (False, True)
}
_PLAY_GRANT = (
    "Private and monetized streams: a `Bearer` token that passes the access rules, or the "
    "`?grant=` of the `play_urls` from `GET /v1/streams/{stream_id}` (for players that "
    "cannot send headers); a forged or expired grant is 403, and so is one whose user may "
    "no longer listen (subscription lapsed, account deleted)."
)


async def _live_relay(request: web.Request, stream_id: uuid.UUID) -> tuple[StreamRow, Relay | str]:
    """The stream the caller may listen to (by its play grant, else by the access rules),
    and its relay on this node, or the URL of the node that relays it."""
    app = request.app
    streams = app[STREAMS]
    grant = request.query.get("grant")
    if grant is not None:
        row = await streams.play_access(stream_id, grant)
    else:
        row = await streams.media_access(request.get(principal_key), stream_id)
    return row, await _relay(app, stream_id)


async def _relay(app: web.Application, stream_id: uuid.UUID) -> Relay | str:
    """This node's relay of the stream, once it has audio (a listener arriving while it
    connects is held up to `RELAY_CONNECT_WAIT_SECONDS`), or the public URL of the node of
    the cluster that relays it."""
    cluster = app.get(CLUSTER)
    if cluster is None:
        raise NotFound("Stream is not live")
    owner_url = cluster.elsewhere(stream_id)
    if owner_url is not None:
        return owner_url
    relay = cluster.relay_here(stream_id) or await cluster.local_relay(stream_id)
    if relay is None:
        raise NotFound("Stream is not live")
    return relay


def _redirect(request: web.Request, owner_url: str, row: StreamRow | None) -> web.Response:
    """307 to the same URL on the node that relays the stream. A caller admitted by its
    `Authorization` header to a private or monetized stream gets a grant in the URL: a
    player does not send that header to another origin."""
    location = f"{owner_url}{request.path_qs}"
    if row is not None and "grant" not in request.query and not is_open(row):
        if request.match_info.get("seq") is not None:
            location = f"{owner_url}{request.path}{request.app[GRANTS].segment_query(row)}"
        else:
            urls = request.app[GRANTS].play_urls(owner_url, row, request.get(principal_key))
            location = urls.mp3 if request.path.endswith(".mp3") else urls.hls
    # Where a stream is relayed changes (takeovers): no cache may keep this answer.
    headers = {"Location": location, "Cache-Control": "no-store"}
    return web.Response(status=307, headers=headers)


def _header(value: str | None) -> str:
    return " ".join((value or "").split())[:200]


@api.get(
    "/v1/streams/{stream_id}/live.mp3",
    summary="Listen: the continuous stream, MP3 or AAC (ICY metadata on request)",
    description="The stream's audio as its source sends it: MP3 (`audio/mpeg`) or AAC in "
    "ADTS (`audio/aac`), named by `Content-Type` and by the status's `content_type`. One "
    "URL for both, so links and players keep working when a DJ changes encoder (browsers "
    "and players go by the `Content-Type`, not the name). " + _PLAY_GRANT,
    produces="audio/mpeg",
    also_produces=("audio/aac",),
    **{**_LIVE, "params": (GRANT, ICY_METADATA)},
)
async def live_mp3(request: web.Request) -> web.StreamResponse:
    row, relay = await _live_relay(request, path_uuid(request, "stream_id", "Stream"))
    if isinstance(relay, str):
        return _redirect(request, relay, row)
    public = is_open(row)
    streams, principal = request.app[STREAMS], request.get(principal_key)
    grant = request.query.get("grant")
    if relay.down:
        raise NotFound(RELAY_DOWN, headers={"Retry-After": "10"})
    source = relay.source
    headers = {
        "icy-name": _header(source.name),
        "icy-genre": _header(source.genre),
        "icy-description": _header(source.description),
        "icy-pub": "1" if public else "0",
    }
    if relay.bitrate_kbps:
        headers["icy-br"] = str(relay.bitrate_kbps)
    decorate = functools.partial(request.app[ENVELOPE].decorate, request)
    listen = functools.partial(
        serve_listener, before_prepare=decorate, content_type=relay.codec.content_type
    )
    if public:
        return await listen(request, relay.hub, headers)

    async def recheck() -> bool:  # a lapsed subscription or a deleted account ends it
        return await streams.still_listening(row.stream_id, principal, grant)

    every = request.app[SETTINGS].listener_recheck_seconds
    return await listen(request, relay.hub, headers, recheck=recheck, every=every)


@api.get(
    "/v1/streams/{stream_id}/live.m3u8",
    summary="Listen: live HLS media playlist",
    description=_PLAY_GRANT + " Segment URLs of a private or monetized stream's playlist "
    "carry their own short-lived `grant`.",
    produces="application/vnd.apple.mpegurl",
    **{
        **_LIVE,
        "examples": {
            **_LIVE["examples"],
            404: (*_LIVE["examples"][404], "No live segments yet; retry in a few seconds"),
        },
    },
    bound=True,
)
def live_m3u8(media: MediaServices, request: web.Request) -> web.Response | Awaitable[web.Response]:
    """From memory for an open stream relayed here (no coroutine: `control.envelope`)."""
    stream_id, row, relay = _open_here(media, request)
    if row is None or relay is None:
        return _live_m3u8(media, request, stream_id)
    return _local_playlist(media, request, row, relay, public=True)


async def _live_m3u8(
    media: MediaServices, request: web.Request, stream_id: uuid.UUID
) -> web.Response:
    row, relay = await _live_relay(request, stream_id)
    if isinstance(relay, str):
        return await _shared_playlist(request, row, relay)
    return _local_playlist(media, request, row, relay, public=is_open(row))


def _open_here(
    media: MediaServices, request: web.Request
) -> tuple[uuid.UUID, StreamRow | None, Relay | None]:
    """The URL's stream id and, when no grant was sent, memory holds the stream open to
    anyone and this node relays it with audio, its row and relay (else None: await)."""
    stream_id = path_uuid(request, "stream_id", "Stream")
    if request.query_string and "grant" in request.query:
        return stream_id, None, None
    row, cluster = media.streams.open_row(stream_id), media.cluster
    if row is None or cluster is None:
        return stream_id, None, None
    return stream_id, row, cluster.relay_here(stream_id)


def _local_playlist(
    media: MediaServices, request: web.Request, row: StreamRow, relay: Relay, *, public: bool
) -> web.Response:
    """`public`: `is_open(row)` (the caller knows)."""
    hls = relay.hls
    if not relay.connected and relay.down:  # (a connected relay is never down)
        raise NotFound(RELAY_DOWN, headers={"Retry-After": "10"})
    # Segment URIs relative to the playlist (RFC 8216 §4.1): a player resolves them
    # against the URL it fetched, so they hold behind an ingress, a CDN or a redirect to
    # the stream's owner, whatever MEDIASERVER_PUBLIC_URL says.
    query = "" if public else media.grants.segment_query(row)
    rendered = hls.rendered
    if rendered is None or rendered[0] != query:
        # Rebuilt when a segment is appended (which drops the rendering) or the grant
        # differs, not per poll. (A window that had segments keeps some: only appending
        # one retires others.)
        if not len(hls.window):
            raise NotFound("No live segments yet; retry in a few seconds")
        playlist = hls.playlist(lambda seq: f"hls/{seq}.ts{query}")
        body = Body.of(render_media_playlist(playlist).encode(), compress=True)
        page = _Page(body, _playlist_cache(public, hls.target_duration))
        rendered = hls.rendered = (query, page)
    # Players are told apart by address and User-Agent: behind an ingress, the listener's
    # (`ClientAddress`, written out for the common node that takes the peer's).
    address = media.client_address
    client = request.remote if address.peer_only else address(request)
    relay.note_hls_client(client, request.headers.get("User-Agent", ""))
    served = rendered[1]
    assert isinstance(served, _Page)  # what this module stored above
    return send_body(request, served.body, "application/vnd.apple.mpegurl", served.cache)


class _Page(NamedTuple):
    """A live playlist as rendered (`LiveHls.rendered`), and its `Cache-Control`."""

    body: Body
    cache: str


def _send_playlist(request: web.Request, body: Body, public: bool, target: int) -> web.Response:
    cache = _playlist_cache(public, target)
    return send_body(request, body, "application/vnd.apple.mpegurl", cache)


def _playlist_cache(public: bool, target: int) -> str:
    # DESIGN "Deviations": at most half a target duration, so a CDN is never a segment behind.
    max_age = max(1, target // 2)
    # A private playlist holds segment grants: no shared cache may hand it to others.
    return f"max-age={max_age}" if public else f"private, max-age={max_age}"


async def _shared_playlist(request: web.Request, row: StreamRow, owner_url: str) -> web.Response:
    """The live playlist of a stream another node relays, as that node published it to the
    cluster, so a player keeps polling the node it entered by (hls.js reloads a playlist
    from the URL a redirect gave it, and would be stranded there when that node dies).
    Redirected to the owner when there is none yet, or it is stale."""
    cluster = request.app[CLUSTER]
    playlist = await cluster.shared_playlist(row.stream_id)
    if playlist is None:
        return _redirect(request, owner_url, row)
    player = (request.app[CLIENT_ADDRESS](request), request.headers.get("User-Agent", ""))
    cluster.note_hls_player(row.stream_id, player)
    if not is_open(row):
        query = request.app[GRANTS].segment_query(row)
        segments = tuple(replace(s, uri=s.uri + query) for s in playlist.segments)
        playlist = replace(playlist, segments=segments)
    body = Body.of(render_media_playlist(playlist).encode(), compress=True)
    return _send_playlist(request, body, is_open(row), playlist.target_duration)


@api.get(
    "/v1/streams/{stream_id}/hls/{seq:\\d+}.ts",
    summary="Live HLS segment (MPEG-TS)",
    description="The `grant` is the one the playlist's segment URIs carry.",
    produces="video/mp2t",
    **{
        **_LIVE,
        "examples": {
            **_LIVE["examples"],
            403: ("Subscription required", "This segment link has expired; reload the playlist"),
            404: ("Stream not found", "Stream is not live", "Segment is no longer available"),
        },
    },
    bound=True,
)
def live_segment(
    media: MediaServices, request: web.Request
) -> web.Response | Awaitable[web.Response]:
    """From memory for an open stream relayed here (no coroutine: `control.envelope`)."""
    stream_id, row, relay = _open_here(media, request)
    if row is None or relay is None:
        return _live_segment(request, stream_id)
    return _local_segment(request, relay, public=True)


async def _live_segment(request: web.Request, stream_id: uuid.UUID) -> web.Response:
    grant = request.query.get("grant")
    row: StreamRow | None = None
    if grant is not None:
        await request.app[STREAMS].segment_access(stream_id, grant)
        relay = await _relay(request.app, stream_id)
    else:
        row, relay = await _live_relay(request, stream_id)
    # Not "no grant": a private stream's segment fetched with a token is the user's too.
    public = row is not None and is_open(row)
    sequence = int(request.match_info["seq"])
    if isinstance(relay, str):  # relayed by another node, which published its segments
        payload = await request.app[CLUSTER].shared_segment(stream_id, sequence)
        if payload is None:
            return _redirect(request, relay, row)
        return web.Response(body=payload, headers=_SEGMENT_HEADERS[public])
    return _local_segment(request, relay, public=public)


def _local_segment(request: web.Request, relay: Relay, *, public: bool) -> web.Response:
    entry = relay.hls.window.get(int(request.match_info["seq"]))
    if entry is None:
        raise NotFound("Segment is no longer available")
    return web.Response(body=entry.payload, headers=_SEGMENT_HEADERS[public])
