"""Assembles the control API: every domain's routes inside the envelope, and the docs."""

from __future__ import annotations

from aiohttp import web

from control import system
from control.analytics import routes as analytics_routes
from control.api import Api, Guard
from control.auth import pages as account_pages
from control.auth import routes as auth_routes
from control.catalog import routes as catalog_routes
from control.domains import routes as domains_routes
from control.envelope import ENVELOPE, Envelope
from control.media import MEDIA_SERVICES, MediaServices
from control.monetization import routes as monetization_routes
from control.nowplaying import routes as nowplaying_routes
from control.openapi import OPENAPI, build_document
from control.pages import routes as pages_routes
from control.playlists import routes as playlists_routes
from control.podcasts import media_routes as podcast_media_routes
from control.podcasts import routes as podcasts_routes
from control.profiles import routes as profiles_routes
from control.streams import media_routes as stream_media_routes
from control.streams import routes as streams_routes
from control.tracks import routes as tracks_routes
from control.uploads import routes as uploads_routes
from control.users import routes as users_routes
from mediaserver.config import Settings
from mediaserver.metrics import Metrics

DOMAINS = (
    system,
    auth_routes,
    account_pages,
    users_routes,
    profiles_routes,
    streams_routes,
    nowplaying_routes,
    uploads_routes,
    catalog_routes,  # before tracks_routes: /v1/tracks/search is not a track id
    tracks_routes,
    playlists_routes,
    podcasts_routes,
    podcast_media_routes,
    domains_routes,
    monetization_routes,
    analytics_routes,
    pages_routes,
    stream_media_routes,
)


def all_routes() -> Api:
    api = Api()
    for module in DOMAINS:
        api.extend(module.api)
    return api


def setup_control(app: web.Application, settings: Settings, guard: Guard, metrics: Metrics) -> None:
    """Every route, each inside the envelope (no aiohttp middleware: `control.envelope`),
    the catch-all for unmatched requests last, the response headers and the docs."""
    envelope = app[ENVELOPE] = Envelope(metrics, settings)
    media = app[MEDIA_SERVICES] = MediaServices()
    routes = all_routes()
    routes.register(app, guard, envelope, media)
    app.on_startup.append(guard.bind)
    app.on_startup.append(media.bind)
    envelope.add_fallback(app)
    app[OPENAPI] = build_document(routes, server_url=settings.base_url)
