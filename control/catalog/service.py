"""The catalog: public tracks listed and searched (with facets), public playlists and
podcasts found the same way.

Typo tolerance needs PostgreSQL's `pg_trgm`, which the embedded server lacks: the service
asks the database once, at start-up, which extensions it has (`CatalogService.open`) and
without `pg_trgm` searches the words as typed (accents are folded either way: see
`sql/0012_catalog_search.sql`)."""

from __future__ import annotations

import logging

import asyncpg
from aiohttp import web

from control.catalog import directories, queries
from control.catalog.queries import BPM_BUCKETS, FacetRows, SearchRows, SummaryRow, TrackQuery
from control.catalog.schemas import (
    BpmBucket,
    DirectoryQuery,
    FacetCount,
    Facets,
    PlaylistDirectory,
    PodcastDirectory,
    PodcastDirectoryQuery,
    TrackFilters,
    TrackList,
    TrackListQuery,
    TrackSearchQuery,
    TrackSearchResult,
    TrackSummary,
    words_of,
)
from control.mediacache import TtlCache
from control.security import Principal
from control.tracks import links
from mediaserver.errors import Unauthenticated

log = logging.getLogger(__name__)
SIGN_IN_FOR_MINE = "Sign in to list your own tracks (mine=true)"
TOTAL_TTL = 30.0
TOTALS_KEPT = 10_000
#: Typo corrections of a search's words are kept this long (a word learned meanwhile is
#: searched anyway: a correction adds alternatives, the word as typed stays one of them).
CORRECTIONS_TTL = 60.0
CORRECTIONS_KEPT = 10_000
#: The head tier of a search: the words found in the title (weight A), artist or album (B).
HEAD_WEIGHTS = "AB"


def tsquery_text(words: list[str], corrections: dict[int, list[str]], weights: str = "") -> str:
    """The `to_tsquery` text of a search: every word must match (`&`), the last one as a
    prefix (`deep ho` finds "Deep House"), a word with corrections matches any of them
    (`techo` → `(techo | techno)`). `words` are `\\w+` runs: no tsquery syntax in them.
    `weights` restricts every word to those parts of the document (`AB`: title, artist
    and album)."""
    terms = []
    for index, word in enumerate(words):
        term = f"{word}:*{weights}" if index == len(words) - 1 else _weighted(word, weights)
        alternatives = [term, *(_weighted(fix, weights) for fix in corrections.get(index, []))]
        terms.append(alternatives[0] if len(alternatives) == 1 else f"({' | '.join(alternatives)})")
    return " & ".join(terms)


def _weighted(word: str, weights: str) -> str:
    return f"{word}:{weights}" if weights else word


def track_query(filters: TrackFilters, principal: Principal | None) -> TrackQuery:
    """The WHERE clause of `filters` as `principal` may see the catalog."""
    if filters.mine and principal is None:
        raise Unauthenticated(SIGN_IN_FOR_MINE)
    query = TrackQuery(viewer_id=principal.user_id if filters.mine and principal else None)
    query.filter("genre", filters.genre)
    query.filter("tags", filters.tag_list or None)
    query.filter("artist", filters.artist)
    query.filter("uploader_id", filters.uploader_id)
    query.filter("min_duration", filters.min_duration)
    query.filter("max_duration", filters.max_duration)
    query.filter("bpm_min", filters.bpm_min)
    query.filter("bpm_max", filters.bpm_max)
    query.filter("key", filters.key)
    return query


def summary_out(row: SummaryRow, origin: str) -> TrackSummary:
    # Built from rows the database checked: no need to validate them again (a page of 100
    # summaries costs milliseconds more through validation).
    return TrackSummary.model_construct(
        track_id=row.track_id,
        title=row.title,
        artist=row.artist,
        album=row.album,
        genre=row.genre,
        tags=row.tags,
        bpm=row.bpm,
        key=row.musical_key,
        duration_seconds=row.duration_seconds,
        visibility=row.visibility,  # type: ignore[arg-type]  # the table CHECKs it
        uploader_id=row.owner_id,
        plays=row.plays,
        created_at=row.created_at,
        hls_master_url=links.master_url(origin, row.track_id),
        waveform_url=links.waveform_url(origin, row.track_id),
        artwork_url=links.artwork_url(origin, row.track_id) if row.artwork_key else None,
    )


def scaled_facets(found: SearchRows, head_total: int, rest_total: int) -> FacetRows:
    """The facet counts of the matches read, each tier's scaled to its (estimated) total:
    the counts themselves when every match was read."""
    head_scale = head_total / max(1, found.head.read)
    rest_scale = rest_total / max(1, found.rest_read)

    def scaled(head: int, rest: int) -> int:
        return round(head * head_scale + rest * rest_scale)

    def ordered(counts: list[tuple[str, int, int]]) -> list[tuple[str, int]]:
        return sorted(((name, scaled(h, r)) for name, h, r in counts), key=lambda c: (-c[1], c[0]))

    return FacetRows(
        genre=ordered(found.genres),
        key=ordered(found.keys),
        bpm=[scaled(h, r) for h, r in found.bpms],
    )


def facets_out(rows: FacetRows) -> Facets:
    return Facets(
        genre=[FacetCount(value=name, count=n) for name, n in rows.genre],
        key=[FacetCount(value=name, count=n) for name, n in rows.key],
        bpm=[
            BpmBucket(range=label, min=low, max=high, count=n)
            for (label, low, high), n in zip(BPM_BUCKETS, rows.bpm, strict=True)
        ],
    )


class CatalogService:
    """Reads only: the catalog's rows are written by the tracks, playlists and podcasts
    services (and kept searchable by the database's triggers and generated columns)."""

    def __init__(self, pool: asyncpg.Pool, *, trigram: bool) -> None:
        self._pool = pool
        self._totals: TtlCache[tuple[str, tuple[object, ...]], tuple[int, bool]] = TtlCache(
            ttl=TOTAL_TTL, max_entries=TOTALS_KEPT
        )
        self._corrections: TtlCache[tuple[str, ...], dict[int, list[str]]] = TtlCache(
            ttl=CORRECTIONS_TTL, max_entries=CORRECTIONS_KEPT
        )
        #: pg_trgm is there: words found nowhere are corrected to the closest known ones.
        self.trigram = trigram

    @classmethod
    async def open(cls, pool: asyncpg.Pool) -> CatalogService:
        """The service for this database, after asking which extensions it has."""
        found = await queries.extensions(pool)
        if "pg_trgm" not in found:
            log.warning("PostgreSQL has no pg_trgm: track search is not typo-tolerant")
        return cls(pool, trigram="pg_trgm" in found)

    async def list_tracks(
        self, principal: Principal | None, query: TrackListQuery, origin: str
    ) -> TrackList:
        """Listed tracks (with `mine`, the caller's own too) filtered, sorted, paged."""
        where = track_query(query, principal)
        total, exact = await self._total(where)
        rows = await queries.list_tracks(
            self._pool,
            where,
            query.sort,
            query.order,
            query.per_page,
            query.offset,
            broad=not exact,
        )
        tracks = [summary_out(row, origin) for row in rows]
        return TrackList(
            tracks=tracks, page=query.page, per_page=query.per_page, total=total, total_exact=exact
        )

    async def _total(self, where: TrackQuery) -> tuple[int, bool]:
        """How many tracks `where` pages through, and whether that is counted (else
        estimated: `queries.count_tracks`). Estimates are kept `TOTAL_TTL` seconds;
        small totals are always counted."""
        key = (
            queries.count_statement(where),
            tuple(tuple(a) if isinstance(a, list) else a for a in where.args),
        )
        total = self._totals.get(key)
        if total is None:
            total = await self._totals.load(
                key,
                lambda: queries.count_tracks(self._pool, where),
                keep=lambda found: not found[1],
            )
        return total or (0, True)

    async def search_tracks(
        self, principal: Principal | None, query: TrackSearchQuery, origin: str
    ) -> TrackSearchResult:
        """Tracks matching every word of `q` (the last as a prefix), best first, with the
        facets of all the matches. Two tiers (`queries.search_statement`): the matches of
        the title, artist and album first, then the others. All exact when each tier has
        no more matches than its sample; beyond, that tier's total is estimated (the
        facets scaled to it) and pages are ranked among its sample (`ranking_exact`)."""
        words = words_of(query.q)
        fixes = await self._fixes(words) if self.trigram else {}
        text, head_text = tsquery_text(words, fixes), tsquery_text(words, fixes, HEAD_WEIGHTS)
        where = track_query(query, principal)
        found = await queries.search_tracks(
            self._pool, where, text, head_text, query.per_page, query.offset
        )
        head_total, rest_total = found.totals()
        end = query.offset + query.per_page
        return TrackSearchResult(
            tracks=[summary_out(row, origin) for row in found.rows],
            page=query.page,
            per_page=query.per_page,
            total=head_total + rest_total,
            total_exact=found.exact,
            facets=facets_out(scaled_facets(found, head_total, rest_total)),
            facets_approximate=not found.exact,
            # Every head match was read and ranked, and the page lies among them.
            ranking_exact=found.exact or (found.head.whole and end <= found.head.read),
        )

    async def _fixes(self, words: list[str]) -> dict[int, list[str]]:
        """`queries.corrections` of `words`, kept `CORRECTIONS_TTL` seconds."""
        key = tuple(words)
        fixes = self._corrections.get(key)
        if fixes is None:
            fixes = await self._corrections.load(
                key, lambda: queries.corrections(self._pool, words)
            )
        return fixes or {}

    async def playlists(self, query: DirectoryQuery, origin: str) -> PlaylistDirectory:
        """Public playlists ready to play: best match first with `q`, else newest."""
        tsquery = tsquery_text(words_of(query.q), {}) if query.q else None
        rows, total = await directories.playlists(self._pool, tsquery, query.per_page, query.offset)
        return PlaylistDirectory(
            playlists=[directories.playlist_out(row, origin) for row in rows],
            page=query.page,
            per_page=query.per_page,
            total=total,
        )

    async def podcasts(self, query: PodcastDirectoryQuery, origin: str) -> PodcastDirectory:
        """Podcasts (all are public; paid ones say `monetization_enabled`), filtered by
        category and language, best match first with `q`, else newest."""
        tsquery = tsquery_text(words_of(query.q), {}) if query.q else None
        only = directories.PodcastFilter(tsquery, query.category, query.language)
        rows, total = await directories.podcasts(self._pool, only, query.per_page, query.offset)
        return PodcastDirectory(
            podcasts=[directories.podcast_out(row, origin) for row in rows],
            page=query.page,
            per_page=query.per_page,
            total=total,
        )


CATALOG = web.AppKey("catalog_service", CatalogService)
