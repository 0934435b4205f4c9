"""`/v1/streams*` control routes (the media routes live with the relay and HLS packages)."""

from __future__ import annotations

from aiohttp import web

from control.api import Api, path_uuid
from control.security import principal_key, principal_of
from control.streams.probe import PROBE_FAILED
from control.streams.schemas import (
    AdMarkers,
    AdMarkersIn,
    HeartbeatIn,
    HeartbeatOk,
    Ingest,
    StreamCreated,
    StreamDetail,
    StreamIn,
    StreamList,
    StreamListQuery,
    StreamStatus,
    StreamUpdate,
    StreamUpdated,
)
from control.streams.service import PUSH_OFF, STREAMS

api = Api()
STREAM = "/v1/streams/{stream_id}"
OWNER_ONLY = "Only the stream's owner or an admin can do this"
#: What a private or monetized stream answers a caller who may not see it.
READ_REFUSED = ("Your token lacks the 'streams:read' scope", "Subscription required")


@api.post(
    "/v1/streams",
    summary="Register a SHOUTcast or Icecast source, or a mount to push to",
    description="Pull (default): the stream key is checked against the source's admin "
    "interface first; every failed check answers the same 422 (the answer must not map the "
    "network). The key is stored encrypted and never returned. Push "
    "(`source_type: push`): the answer's `ingest` is what the DJ's encoder connects to "
    "(Icecast source protocol on `INGEST_PORT`), with a source password shown only here; "
    "409 when the mount is taken, 422 when the server takes no pushed streams.",
    tag="streams",
    body=StreamIn,
    response=StreamCreated,
    status=201,
    scope="streams:write",
    errors=(400, 401, 403, 409, 422, 429),
    examples={
        409: "Mount /live is taken; choose another",
        422: (PROBE_FAILED, PUSH_OFF),
    },
)
async def register_stream(request: web.Request, body: StreamIn) -> StreamCreated:
    return await request.app[STREAMS].register(principal_of(request), body)


@api.get(
    "/v1/streams",
    summary="The directory of live streams, newest first",
    description="Public enabled streams, plus the caller's own private ones when signed in; "
    "`mine=true` lists only the caller's streams, disabled ones included.",
    tag="streams",
    query=StreamListQuery,
    response=StreamList,
    auth="optional",
    errors=(400, 401, 429),
)
async def list_streams(request: web.Request, query: StreamListQuery) -> StreamList:
    return await request.app[STREAMS].directory(request.get(principal_key), query)


@api.get(
    STREAM,
    summary="One stream's metadata",
    description="Private streams need a token with `streams:read` and, when monetized, an "
    "active subscription; owners and admins always see their streams. `play_urls` are "
    "links any player can open without headers (Safari, VLC, `<audio>`): for a private or "
    "monetized stream they carry a signed `grant` valid until `expires_at` "
    "(`PLAY_URL_TTL_SECONDS`, 6 h by default); null when the caller may not listen now.",
    tag="streams",
    response=StreamDetail,
    auth="optional",
    errors=(401, 403, 404, 429),
    examples={403: READ_REFUSED},
)
async def get_stream(request: web.Request) -> StreamDetail:
    stream_id = path_uuid(request, "stream_id", "Stream")
    return await request.app[STREAMS].detail(request.get(principal_key), stream_id)


@api.patch(
    STREAM,
    summary="Change a stream's settings (owner or admin)",
    description="Any non-empty subset of the fields; `enabled: false` stops the relay.",
    tag="streams",
    body=StreamUpdate,
    response=StreamUpdated,
    body_example={"genre": "Deep House", "enabled": False},
    scope="streams:write",
    errors=(400, 401, 403, 404, 429),
    examples={403: ("Your token lacks the 'streams:write' scope", OWNER_ONLY)},
)
async def update_stream(request: web.Request, body: StreamUpdate) -> StreamUpdated:
    stream_id = path_uuid(request, "stream_id", "Stream")
    return await request.app[STREAMS].update(principal_of(request), stream_id, body)


@api.delete(
    STREAM,
    summary="Unregister a stream (owner or admin)",
    description="Soft delete: the relay stops and its listeners are disconnected.",
    tag="streams",
    status=204,
    scope="streams:write",
    errors=(401, 403, 404, 429),
    examples={403: ("Your token lacks the 'streams:write' scope", OWNER_ONLY)},
)
async def delete_stream(request: web.Request) -> None:
    stream_id = path_uuid(request, "stream_id", "Stream")
    await request.app[STREAMS].delete(principal_of(request), stream_id)


@api.post(
    f"{STREAM}/heartbeat",
    summary="Heartbeat of an external relay (relay service token)",
    tag="streams",
    body=HeartbeatIn,
    response=HeartbeatOk,
    auth="service",
    # One relay posts for many streams every 30 s; the token check is the gate.
    rate=None,
    errors=(400, 401, 404, 410),
    examples={410: "Stream is disabled or deleted"},
)
async def stream_heartbeat(request: web.Request, body: HeartbeatIn) -> HeartbeatOk:
    stream_id = path_uuid(request, "stream_id", "Stream")
    await request.app[STREAMS].record_heartbeat(stream_id, **body.model_dump())
    return HeartbeatOk()


@api.get(
    f"{STREAM}/status",
    summary="Live status: now playing, bitrate, listeners, uptime, relay connection",
    description="`relay_connected` is true while the relay's last heartbeat is at most 2 "
    "minutes old; 503 once it has been offline for more than 5 minutes. A public stream's "
    "status needs no token, monetized or not (its audio does); a private one needs "
    "`streams:read` (and, when monetized, a subscription).",
    tag="streams",
    response=StreamStatus,
    auth="optional",
    errors=(401, 403, 404, 429, 503),
    examples={403: READ_REFUSED, 503: "Relay has been offline for more than 5 minutes"},
)
async def stream_status(request: web.Request) -> StreamStatus:
    stream_id = path_uuid(request, "stream_id", "Stream")
    return await request.app[STREAMS].status(request.get(principal_key), stream_id)


@api.post(
    f"{STREAM}/source-password",
    summary="A new source password for a push stream (owner or admin)",
    description="The old password stops working at once (an encoder connected with it stays "
    "connected). The answer is the stream's `ingest`, with the new password shown only here.",
    tag="streams",
    response=Ingest,
    scope="streams:write",
    errors=(401, 403, 404, 422, 429),
    examples={
        403: ("Your token lacks the 'streams:write' scope", OWNER_ONLY),
        422: ("Only push streams have a source password", PUSH_OFF),
    },
)
async def rotate_source_password(request: web.Request) -> Ingest:
    stream_id = path_uuid(request, "stream_id", "Stream")
    return await request.app[STREAMS].rotate_source_password(principal_of(request), stream_id)


@api.post(
    f"{STREAM}/ads",
    summary="Set a stream's ad markers (owner or admin)",
    description="Replaces every marker of the stream; returns them sorted by position.",
    tag="streams",
    body=AdMarkersIn,
    response=AdMarkers,
    scope="monetization:write",
    errors=(400, 401, 403, 404, 429),
    examples={403: ("Your token lacks the 'monetization:write' scope", OWNER_ONLY)},
)
async def set_ad_markers(request: web.Request, body: AdMarkersIn) -> AdMarkers:
    stream_id = path_uuid(request, "stream_id", "Stream")
    return await request.app[STREAMS].set_ad_markers(principal_of(request), stream_id, body)


@api.get(
    f"{STREAM}/ads",
    summary="A stream's ad markers (owner or admin)",
    tag="streams",
    response=AdMarkers,
    errors=(401, 403, 404, 429),
    examples={403: OWNER_ONLY},
)
async def get_ad_markers(request: web.Request) -> AdMarkers:
    stream_id = path_uuid(request, "stream_id", "Stream")
    return await request.app[STREAMS].list_ad_markers(principal_of(request), stream_id)
