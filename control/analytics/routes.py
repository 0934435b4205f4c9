"""`/v1/analytics/*`."""

from __future__ import annotations

from aiohttp import web

from control.analytics.schemas import DateRangeQuery, PlaylistAnalytics, StreamAnalytics
from control.analytics.service import ANALYTICS
from control.api import Api, path_uuid
from control.security import principal_of

api = Api()


@api.get(
    "/v1/analytics/streams/{stream_id}",
    summary="Listeners per day of a stream (owner or admin)",
    tag="analytics",
    query=DateRangeQuery,
    response=StreamAnalytics,
    scope="analytics:read",
    errors=(400, 401, 403, 404, 429),
    examples={
        403: (
            "Your token lacks the 'analytics:read' scope",
            "Only the stream's owner or an admin can see its analytics",
        )
    },
)
async def stream_analytics(request: web.Request, query: DateRangeQuery) -> StreamAnalytics:
    stream_id = path_uuid(request, "stream_id", "Stream")
    return await request.app[ANALYTICS].stream_report(principal_of(request), stream_id, query)


@api.get(
    "/v1/analytics/playlists/{playlist_id}",
    summary="Plays per day of a playlist (owner or admin)",
    tag="analytics",
    query=DateRangeQuery,
    response=PlaylistAnalytics,
    scope="analytics:read",
    errors=(400, 401, 403, 404, 429),
    examples={
        403: (
            "Your token lacks the 'analytics:read' scope",
            "Only the playlist's owner or an admin can see its analytics",
        )
    },
)
async def playlist_analytics(request: web.Request, query: DateRangeQuery) -> PlaylistAnalytics:
    playlist_id = path_uuid(request, "playlist_id", "Playlist")
    return await request.app[ANALYTICS].playlist_report(principal_of(request), playlist_id, query)
