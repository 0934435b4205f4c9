"""The pages a person opens (issue 12): `/` (stations on air), `/stations/{stream_id}`, the
embeddable player `/embed/{stream_id}`, and their style sheet and scripts (`/assets/…`,
shipped in this package: no build step, nothing from another site).

They are HTML, not API, but go through the route table like the account pages
(`control.auth.pages`): the envelope, the rate limits and the OpenAPI document cover them.
Each page sets its own Content-Security-Policy, allowing exactly what it uses; the embed
alone may be framed by any site (`frame-ancestors *`, and no `X-Frame-Options`)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from control.api import Api, path_uuid
from control.pages import views
from control.pages.policy import media_origins, policy
from control.pages.service import NO_STATION, PAGES
from mediaserver.errors import NotFound

api = Api()
STATIC = Path(__file__).with_name("static")
NO_ASSET = "No such page asset"
TOO_LONG = "Query parameter 'q' must be at most 100 characters long."
# Pages show what is on air now: a browser revalidates rather than show a stale one.
_NO_CACHE = "no-cache"
_CONTENT_TYPES = {".css": "text/css", ".js": "text/javascript"}


def _empty_is_none(value: object) -> object:
    """The filter form sends `genre=` for "All genres" and `q=` when the box is empty."""
    return None if isinstance(value, str) and not value.strip() else value


Filter = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None,
    BeforeValidator(_empty_is_none),
]


class DirectoryQuery(BaseModel):
    """`/?genre=&q=`: one genre (any case) and a text search in names, descriptions and
    genres, as `GET /v1/streams` filters them. Other parameters are ignored: a link to a
    page with a tracking parameter (`?utm_source=…`) still opens it."""

    model_config = ConfigDict(extra="ignore")

    genre: Filter = Field(None, examples=["House"])
    q: Filter = Field(None, examples=["friday"])


def _html(
    request: web.Request, text: str, *, embed: bool = False, status: int = 200
) -> web.Response:
    csp = policy(media_origins(request.app), embed=embed)
    headers = {"Content-Security-Policy": csp, "Cache-Control": _NO_CACHE}
    return web.Response(text=text, content_type="text/html", status=status, headers=headers)


@api.get(
    "/",
    summary="The stations on air (HTML page)",
    description="Name, now playing and listeners of every public station on air, updated "
    "live; filters by genre and text.",
    tag="pages",
    query=DirectoryQuery,
    auth="none",
    produces="text/html",
    errors=(400, 429),
    examples={400: TOO_LONG},
)
async def directory(request: web.Request, query: DirectoryQuery) -> web.Response:
    found = await request.app[PAGES].directory(query.genre, query.q)
    return _html(request, views.directory_page(found))


@api.get(
    "/stations/{stream_id}",
    summary="A station's page with its player (HTML page)",
    description="Now playing, listeners, song history, the DJ; a player on the MP3 route, "
    "the HLS link for apps; the plans when the stream is for subscribers. 404 (a page) for "
    "a stream a visitor may not see.",
    tag="pages",
    auth="none",
    produces="text/html",
    errors=(404, 429),
    examples={404: NO_STATION},
)
async def station(request: web.Request) -> web.Response:
    return await _station_page(request, views.station_page)


@api.get(
    "/embed/{stream_id}",
    summary="A station's embeddable player (HTML page, frameable by any site)",
    tag="pages",
    auth="none",
    produces="text/html",
    errors=(404, 429),
    examples={404: NO_STATION},
)
async def embed(request: web.Request) -> web.Response:
    return await _station_page(request, views.embed_page, embed=True)


async def _station_page(
    request: web.Request, render: views.StationRenderer, *, embed: bool = False
) -> web.Response:
    try:
        stream_id = path_uuid(request, "stream_id", "Station")
        found = await request.app[PAGES].station(stream_id)
    except NotFound:
        return _html(request, views.not_found_page(NO_STATION), status=404)
    return _html(request, render(found), embed=embed)


@api.get(
    "/assets/{asset}",
    summary="A style sheet or script of the pages",
    description="Only the files this package ships, by name.",
    tag="pages",
    auth="none",
    rate=None,
    produces="text/css",
    errors=(404,),
    examples={404: NO_ASSET},
)
async def asset(request: web.Request) -> web.FileResponse:
    path = _assets().get(request.match_info["asset"])
    if path is None:
        raise NotFound(NO_ASSET)
    content_type = _CONTENT_TYPES[path.suffix]
    return web.FileResponse(
        path, headers={"Content-Type": content_type, "Cache-Control": _NO_CACHE}
    )


@functools.cache
def _assets() -> dict[str, Path]:
    """The shipped files by name (a name is never joined into a path); listed once."""
    return {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in _CONTENT_TYPES}
