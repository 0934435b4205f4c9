"""`GET /v1/tracks`, `GET /v1/tracks/search` and the playlist and podcast directories.

Registered before the track, playlist and podcast routes (`control.app.DOMAINS`), so that
`/v1/tracks/search` and `/v1/playlists/directory` are matched before `{track_id}` and
`{playlist_id}` (which would answer 404 for them)."""

from __future__ import annotations

from aiohttp import web

from control.api import Api, public_origin
from control.catalog.schemas import (
    DirectoryQuery,
    PlaylistDirectory,
    PodcastDirectory,
    PodcastDirectoryQuery,
    TrackList,
    TrackListQuery,
    TrackSearchQuery,
    TrackSearchResult,
)
from control.catalog.service import CATALOG, SIGN_IN_FOR_MINE
from control.security import principal_key

api = Api()
_FILTERS = (
    "Filters (tracks spec names): `genre`, `artist` (whole value, any case and accents), "
    "`tags` (comma list, every tag must match), `uploader_id`, `min_duration`/"
    "`max_duration` (seconds), `bpm_min`/`bpm_max`, `key` (e.g. `Am`, `F#m`). "
    "Listed: public tracks whose processing is done; `mine=true` with a token adds the "
    "caller's own private and unlisted tracks (401 without one)."
)


@api.get(
    "/v1/tracks",
    summary="The catalog of public tracks, filtered and sorted",
    description=f"{_FILTERS} `sort`: `created_at` (default), `popularity` (plays), "
    "`duration`, `title`; `order`: `desc` (default) or `asc`.",
    tag="catalog",
    query=TrackListQuery,
    response=TrackList,
    auth="optional",
    errors=(400, 401, 429),
    examples={401: SIGN_IN_FOR_MINE},
)
async def list_tracks(request: web.Request, query: TrackListQuery) -> TrackList:
    catalog = request.app[CATALOG]
    return await catalog.list_tracks(request.get(principal_key), query, public_origin(request))


@api.get(
    "/v1/tracks/search",
    summary="Search the catalog, best match first, with facets",
    description="Full-text search of `q` in the title (ranked highest), artist and album, "
    "tags and genre, then description; accents and case ignored, the last word matched "
    "as a prefix (`deep ho` finds Deep House), misspelt words corrected to the closest "
    "known ones where the database has `pg_trgm`. `facets` counts genres, keys and BPM "
    "ranges over the matches, not only the page (a broad search's from samples, scaled: "
    f"`facets_approximate`). {_FILTERS}",
    tag="catalog",
    query=TrackSearchQuery,
    response=TrackSearchResult,
    auth="optional",
    errors=(400, 401, 429),
    examples={400: "Query parameter 'q' is required."},
)
async def search_tracks(request: web.Request, query: TrackSearchQuery) -> TrackSearchResult:
    catalog = request.app[CATALOG]
    return await catalog.search_tracks(request.get(principal_key), query, public_origin(request))


@api.get(
    "/v1/playlists/directory",
    summary="Public playlists, searchable",
    description="Public playlists ready to play. `q` searches titles and descriptions "
    "(best match first); without it, newest first.",
    tag="catalog",
    query=DirectoryQuery,
    response=PlaylistDirectory,
    auth="none",
    errors=(400, 429),
)
async def playlist_directory(request: web.Request, query: DirectoryQuery) -> PlaylistDirectory:
    return await request.app[CATALOG].playlists(query, public_origin(request))


@api.get(
    "/v1/podcasts/directory",
    summary="Podcasts, searchable and filtered by category and language",
    description="Every podcast (paid ones say `monetization_enabled`). `q` searches titles, "
    "authors and descriptions (best match first); without it, newest first.",
    tag="catalog",
    query=PodcastDirectoryQuery,
    response=PodcastDirectory,
    auth="none",
    errors=(400, 429),
)
async def podcast_directory(request: web.Request, query: PodcastDirectoryQuery) -> PodcastDirectory:
    return await request.app[CATALOG].podcasts(query, public_origin(request))
