"""Listener routes of live streams: `live.mp3`, `live.m3u8` and its segments.

Access rules (visibility, paywall) are the streams service's; segments of a playlist
served to an authorised client carry a short-lived signed grant, so players that cannot
send headers (Safari's native HLS) can still fetch them."""

from __future__ import annotations

import time
import uuid

from aiohttp import web

from control.api import Api, path_uuid
from control.security import principal_key
from control.streams.service import STREAMS
from hls.playlist import render_media_playlist
from mediaserver.config import SETTINGS
from mediaserver.crypto import UrlSigner
from mediaserver.errors import Forbidden, NotFound, UpstreamUnavailable
from relay.listener import serve_listener
from relay.manager import RELAYS, Relay

api = Api()
SIGNER = web.AppKey("url_signer", UrlSigner)
GRANT_SECONDS = 600
_MEDIA_ERRORS = (401, 403, 404, 429, 503)


async def _live_relay(request: web.Request) -> tuple[uuid.UUID, Relay, bool]:
    """The relay of an accessible stream, and whether the stream is open to anyone."""
    stream_id = path_uuid(request, "stream_id", "Stream")
    row = await request.app[STREAMS].media_access(request.get(principal_key), stream_id)
    relay = _relay(request, stream_id)
    return stream_id, relay, row.visibility == "public" and not row.monetization_enabled


def _relay(request: web.Request, stream_id: uuid.UUID) -> Relay:
    manager = request.app.get(RELAYS)
    relay = manager.relay(stream_id) if manager is not None else None
    if relay is None:
        raise NotFound("Stream is not live")
    return relay


def _header(value: str | None) -> str:
    return " ".join((value or "").split())[:200]


@api.get(
    "/v1/streams/{stream_id}/live.mp3",
    summary="Listen: continuous MP3 (ICY metadata on request)",
    tag="media",
    auth="optional",
    rate="streaming",
    produces="audio/mpeg",
    errors=_MEDIA_ERRORS,
)
async def live_mp3(request: web.Request) -> web.StreamResponse:
    _, relay, public = await _live_relay(request)
    if not relay.connected and relay.hub.offset == 0:
        raise UpstreamUnavailable("The stream's source is offline", headers={"Retry-After": "10"})
    source = relay.source
    headers = {
        "icy-name": _header(source.name),
        "icy-genre": _header(source.genre),
        "icy-description": _header(source.description),
        "icy-pub": "1" if public else "0",
    }
    if relay.bitrate_kbps:
        headers["icy-br"] = str(relay.bitrate_kbps)
    return await serve_listener(request, relay.hub, headers)


@api.get(
    "/v1/streams/{stream_id}/live.m3u8",
    summary="Listen: live HLS media playlist",
    tag="media",
    auth="optional",
    rate="streaming",
    produces="application/vnd.apple.mpegurl",
    errors=_MEDIA_ERRORS,
)
async def live_m3u8(request: web.Request) -> web.Response:
    stream_id, relay, public = await _live_relay(request)
    if not len(relay.hls.window):
        raise NotFound("No live segments yet; retry in a few seconds")
    relay.note_hls_client(f"{request.remote}|{request.headers.get('User-Agent', '')}")
    # Absolute segment URLs (a CDN or player may resolve relative ones against another
    # origin); without MEDIASERVER_PUBLIC_URL, the origin the player used to reach us.
    origin = request.app[SETTINGS].public_url or str(request.url.origin())
    base = f"{origin}/v1/streams/{stream_id}/hls"
    query = ""
    if not public:  # grants in one-minute buckets, so the text below stays cacheable
        expires = (int(time.time()) // 60 + 1) * 60 + GRANT_SECONDS
        query = "?grant=" + request.app[SIGNER].sign(str(stream_id), expires)
    key = (relay.hls.window.next_sequence, base, query)
    if relay.hls.rendered is None or relay.hls.rendered[0] != key:
        # Rebuilt only when a segment is appended (or the origin/grant differs), not per poll.
        playlist = relay.hls.playlist(lambda seq: f"{base}/{seq}.ts{query}")
        relay.hls.rendered = (key, render_media_playlist(playlist))
    text = relay.hls.rendered[1]
    # DESIGN "Deviations": at most half a target duration, so a CDN is never a segment behind.
    max_age = max(1, relay.hls.target_duration // 2)
    response = web.Response(
        text=text,
        content_type="application/vnd.apple.mpegurl",
        headers={"Cache-Control": f"max-age={max_age}"},
    )
    response.enable_compression()  # gzip/deflate only when the client accepts it
    return response


@api.get(
    "/v1/streams/{stream_id}/hls/{seq:\\d+}.ts",
    summary="Live HLS segment (MPEG-TS)",
    tag="media",
    auth="optional",
    rate="streaming",
    produces="video/mp2t",
    errors=_MEDIA_ERRORS,
)
async def live_segment(request: web.Request) -> web.Response:
    stream_id = path_uuid(request, "stream_id", "Stream")
    grant = request.query.get("grant")
    if grant is not None:
        if not request.app[SIGNER].verify(str(stream_id), grant, time.time()):
            raise Forbidden("This segment link has expired; reload the playlist")
        relay = _relay(request, stream_id)
    else:
        _, relay, _public = await _live_relay(request)
    entry = relay.hls.window.get(int(request.match_info["seq"]))
    if entry is None:
        raise NotFound("Segment is no longer available")
    scope = "public" if grant is None else "private"
    return web.Response(
        body=entry.payload,
        content_type="video/mp2t",
        headers={"Cache-Control": f"{scope}, max-age=86400, immutable"},
    )
