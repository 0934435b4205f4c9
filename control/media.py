"""The services the listener routes use, handed to their handlers instead of looked up.

A route declared with `bound=True` (`control.api.Api.route`) has its handler called as
`handler(media, request)`, `media` being this app's `MediaServices`, whose attributes are
the app's services once it has started (`bind`, an `on_startup` hook). A media GET then
looks none of them up: `request.app[KEY]` is three Python calls (the request's `app` and
its match info's `current_app` are properties, `Application.__getitem__` a method), ~4 k
instructions of a playlist GET's ~280 k, against a floor the origin is held to
(tests/bench/bench_origin.py).
"""

from __future__ import annotations

from aiohttp import web

from control.forwarded import CLIENT_ADDRESS, ClientAddress
from control.playlists.delivery import PLAYLIST_MEDIA, PlaylistMedia
from control.streams.grants import GRANTS, StreamGrants
from control.streams.service import STREAMS, StreamsService
from control.uploads.service import UPLOADS, UploadsService
from mediaserver.cluster import CLUSTER, Cluster
from mediaserver.config import SETTINGS, Settings


class MediaServices:
    """This app's services for the listener routes (module doc); set by `bind`."""

    settings: Settings
    streams: StreamsService
    grants: StreamGrants
    #: None when the app runs no relays of its own (a test's stand-in).
    cluster: Cluster | None
    client_address: ClientAddress
    playlists: PlaylistMedia
    uploads: UploadsService

    async def bind(self, app: web.Application) -> None:
        """`on_startup` hook, after the services exist."""
        self.settings, self.streams, self.grants = app[SETTINGS], app[STREAMS], app[GRANTS]
        self.cluster, self.client_address = app.get(CLUSTER), app[CLIENT_ADDRESS]
        self.playlists, self.uploads = app[PLAYLIST_MEDIA], app[UPLOADS]


MEDIA_SERVICES = web.AppKey("media_services", MediaServices)
