"""SQL of the catalog: the listing and search of tracks, the typo corrections, the playlist
and podcast directories.

The listing's WHERE and ORDER BY depend on which filters the request names, so the
statements are assembled here from constant fragments (`TrackQuery`): a fragment's `{}`
becomes the `$n` of its value, so nothing the client sends is ever part of the SQL text,
and each combination of filters is its own prepared statement with its own plan (a
catch-all `($1 IS NULL OR …)` statement would get one generic plan that uses no index).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from mediaserver.db import Executor

#: Listed: public, not deleted, the upload ready (the partial indexes' predicate, verbatim).
LISTED = "t.deleted_at IS NULL AND t.visibility = 'public' AND t.upload_ready"
#: `mine=true`: the same, plus the caller's own tracks whatever their visibility.
LISTED_OR_MINE = (
    "t.deleted_at IS NULL AND t.upload_ready AND (t.visibility = 'public' OR t.owner_id = {})"
)
FILTERS = {
    "genre": "t.genre_key = (SELECT catalog_fold({}))",
    "tags": "t.tag_keys @> (SELECT catalog_tags({}::text[]))",
    "artist": "t.artist_key = (SELECT catalog_fold({}))",
    "uploader_id": "t.owner_id = {}",
    "min_duration": "t.duration_seconds >= {}::float8",
    "max_duration": "t.duration_seconds <= {}::float8",
    "bpm_min": "t.bpm >= {}",
    "bpm_max": "t.bpm <= {}",
    "key": "t.musical_key = {}",
}
#: The same filters for the planner's estimate of how many tracks they keep (`EXPLAIN`,
#: never run): the values folded in place, so that the planner sees them and uses its
#: statistics (a scalar subquery hides them).
ESTIMATED_FILTERS = {
    **FILTERS,
    "genre": "t.genre_key = catalog_fold({})",
    "tags": "t.tag_keys @> catalog_tags({}::text[])",
    "artist": "t.artist_key = catalog_fold({})",
}
#: The same filters for a listing known to keep many tracks (more than `COUNTED`): the
#: tags written so that no index answers them (`IS TRUE`), so that the page is found by
#: walking the sort's index (which INCLUDEs the tags) and stops after the page. The
#: planner cannot tell a common tag from a rare one (the value is a parameter) and would
#: read every tagged row through the tags' index, then sort them.
BROAD_FILTERS = {
    **FILTERS,
    "tags": "(t.tag_keys @> (SELECT catalog_tags({}::text[]))) IS TRUE",
}
#: A listing's total is counted up to this many tracks; beyond it, estimated.
COUNTED = 1000
SORTS = {
    "created_at": "t.created_at {0}, t.track_id {0}",
    "popularity": "t.plays {0}, t.track_id {0}",
    "duration": "t.duration_seconds {0}, t.track_id {0}",
    "title": "t.title_key {0}, t.track_id {0}",
}
DIRECTIONS = {"asc": "ASC", "desc": "DESC"}
SUMMARY_COLUMNS = """t.track_id, t.title, t.artist, t.album, t.genre, t.tags, t.bpm,
       t.musical_key, t.duration_seconds, t.visibility, t.owner_id, t.plays, t.created_at,
       t.artwork_key"""
#: ts_rank_cd weights, in the order {D, C, B, A}: description, tags, artist, title.
RANK_WEIGHTS = "'{0.1, 0.2, 0.4, 1.0}'"
#: BPM facet buckets: (label, lowest, highest), bounds included, None open.
BPM_BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("<90", None, 89),
    ("90-109", 90, 109),
    ("110-129", 110, 129),
    ("130-149", 130, 149),
    (">=150", 150, None),
)


@dataclass(frozen=True, slots=True)
class SummaryRow:
    track_id: uuid.UUID
    title: str
    artist: str
    album: str | None
    genre: str | None
    tags: list[str]
    bpm: int | None
    musical_key: str | None
    duration_seconds: float | None
    visibility: str
    owner_id: uuid.UUID
    plays: int
    created_at: datetime
    artwork_key: str | None


@dataclass(frozen=True, slots=True)
class FacetRows:
    genre: list[tuple[str, int]]
    key: list[tuple[str, int]]
    #: One count per `BPM_BUCKETS` entry, in order.
    bpm: list[int]


@dataclass
class TrackQuery:
    """The WHERE clause of a listing or search, built from `FILTERS`, with its arguments."""

    viewer_id: uuid.UUID | None = None
    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    #: `clauses` as `ESTIMATED_FILTERS` writes them.
    estimated: list[str] = field(default_factory=list)
    #: `clauses` as `BROAD_FILTERS` writes them.
    broad: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.viewer_id is None:
            for clauses in (self.clauses, self.estimated, self.broad):
                clauses.append(LISTED)
        else:
            self.add(LISTED_OR_MINE, self.viewer_id)

    def add(self, fragment: str, value: Any, *variants: str) -> None:
        """`fragment` with `value`; `variants`: the same in `estimated` and `broad`."""
        self.args.append(value)
        param = f"${len(self.args)}"
        estimated, broad = variants or (fragment, fragment)
        self.clauses.append(fragment.format(param))
        self.estimated.append(estimated.format(param))
        self.broad.append(broad.format(param))

    def filter(self, name: str, value: Any) -> None:
        """`name` is one of `FILTERS`; None (not asked for) adds nothing."""
        if value is not None:
            self.add(FILTERS[name], value, ESTIMATED_FILTERS[name], BROAD_FILTERS[name])

    def param(self, value: Any) -> str:
        """`$n` of one more argument (a limit, an offset, the search)."""
        self.args.append(value)
        return f"${len(self.args)}"

    @property
    def where(self) -> str:
        return " AND ".join(self.clauses)


def order_by(sort: str, order: str) -> str:
    return SORTS[sort].format(DIRECTIONS[order])


def count_statement(query: TrackQuery) -> str:
    """How many tracks `query` keeps, counted up to `COUNTED` + 1."""
    return (
        f"SELECT count(*) FROM (SELECT 1 FROM tracks t WHERE {query.where} "  # noqa: S608 (TrackQuery)
        f"LIMIT {COUNTED + 1}) s"
    )


def estimate_statement(query: TrackQuery) -> str:
    """The planner's estimate of how many tracks `query` keeps (planned, not run)."""
    where = " AND ".join(query.estimated)
    return f"EXPLAIN (FORMAT JSON) SELECT 1 FROM tracks t WHERE {where}"  # noqa: S608 (TrackQuery)


def list_statement(
    query: TrackQuery, sort: str, order: str, limit: int, offset: int, *, broad: bool = False
) -> str:
    """A page of the listing (its total: `count_statement`, before this adds its `$n`).
    The page's ids first, then their rows: the ids come from one index walked in the
    sort's order with the filters tested on its entries (the sort indexes INCLUDE every
    filtered column), so a row is read only for the tracks of the page. `broad`: the
    filters keep more than `COUNTED` tracks (`BROAD_FILTERS`)."""
    ordering = order_by(sort, order)
    where = " AND ".join(query.broad) if broad else query.where
    return (
        f"WITH page AS (SELECT t.track_id FROM tracks t WHERE {where} "  # noqa: S608 (TrackQuery)
        f"ORDER BY {ordering} LIMIT {query.param(limit)} OFFSET {query.param(offset)}) "
        f"SELECT {SUMMARY_COLUMNS} FROM page p JOIN tracks t ON t.track_id = p.track_id "
        f"ORDER BY {ordering}"
    )


async def list_tracks(
    conn: Executor,
    query: TrackQuery,
    sort: str,
    order: str,
    limit: int,
    offset: int,
    *,
    broad: bool = False,
) -> list[SummaryRow]:
    """A page of the listing."""
    statement = list_statement(query, sort, order, limit, offset, broad=broad)
    records = await conn.fetch(statement, *query.args)
    return [summary(r) for r in records]


async def count_tracks(conn: Executor, query: TrackQuery) -> tuple[int, bool]:
    """How many tracks `query` keeps (before a page adds its `$n`), and whether that is
    counted: beyond `COUNTED` the planner's estimate (from the table's statistics) is
    returned instead, never less than `COUNTED` + 1 — counting tens of thousands of rows
    costs more than the page itself."""
    counted = int(await conn.fetchval(count_statement(query), *query.args))
    if counted <= COUNTED:
        return counted, True
    plan = json.loads(await conn.fetchval(estimate_statement(query), *query.args))
    return max(counted, round(plan[0]["Plan"]["Plan Rows"])), False


def tsquery_of(param: str) -> str:
    """The search `param` as a tsquery, accents folded: a scalar subquery, which PostgreSQL
    computes once per statement (an InitPlan) even in a prepared statement's generic plan,
    where `catalog_fold($n)` itself would be called again for every row."""
    return f"(SELECT to_tsquery('simple', catalog_fold({param})))"


#: A search ranks, counts and facets at most this many matches (the first the full-text
#: index yields): beyond it, reading every match costs more than the 20 ms a search may
#: take, so `total` is then a lower bound and the facets count this sample of the matches.
SEARCH_SAMPLE = 500


def search_statement(query: TrackQuery, tsquery: str, limit: int, offset: int) -> str:
    """One statement: the matches ranked (computed once, at most `SEARCH_SAMPLE` + 1 of
    them), their count and facets, and the asked page of them."""
    q, lim, off = query.param(tsquery), query.param(limit), query.param(offset)
    tsq = tsquery_of(q)
    return f"""
WITH found AS MATERIALIZED (
    SELECT t.track_id, t.genre, t.genre_key, t.musical_key, t.bpm, t.plays,
           ts_rank_cd({RANK_WEIGHTS}, t.search_document, {tsq}) AS rank,
           (t.ctid::text::point)[0] AS block
      FROM tracks t
     WHERE t.search_document @@ {tsq} AND {query.where}
     LIMIT {SEARCH_SAMPLE + 1}
),
hits AS MATERIALIZED (SELECT * FROM found LIMIT {SEARCH_SAMPLE}),
page AS (SELECT track_id, rank, plays FROM hits
          ORDER BY rank DESC, plays DESC, track_id LIMIT {lim} OFFSET {off}),
summary AS (
    SELECT count(*) AS total,
           (SELECT count(*) FROM found) > {SEARCH_SAMPLE} AS sampled,
           -- The share of the table the sample was found in (the full-text index's
           -- matches come in the table's order): the whole table holds about
           -- total / share matches.
           (max(block) + 1) / greatest(1, pg_relation_size('tracks')
               / current_setting('block_size')::float8) AS share,
           (SELECT coalesce(json_agg(json_build_array(g.name, g.n) ORDER BY g.n DESC, g.name), '[]')
              FROM (SELECT min(genre) AS name, count(*) AS n FROM hits
                     WHERE genre_key IS NOT NULL GROUP BY genre_key) g) AS genres,
           (SELECT coalesce(json_agg(json_build_array(k.name, k.n) ORDER BY k.n DESC, k.name), '[]')
              FROM (SELECT musical_key AS name, count(*) AS n FROM hits
                     WHERE musical_key IS NOT NULL GROUP BY musical_key) k) AS keys,
           json_build_array({_bpm_counts()}) AS bpms
      FROM hits
)
SELECT s.total, s.sampled, s.share, s.genres, s.keys, s.bpms, {SUMMARY_COLUMNS}
  FROM summary s
  LEFT JOIN (page p JOIN tracks t ON t.track_id = p.track_id) ON true
 ORDER BY p.rank DESC, p.plays DESC, p.track_id"""  # noqa: S608 (TrackQuery)


def _bpm_counts() -> str:
    counts = []
    for _, low, high in BPM_BUCKETS:
        bounds = [
            f"bpm >= {low}" if low is not None else "",
            f"bpm <= {high}" if high is not None else "",
        ]
        counts.append(f"count(*) FILTER (WHERE {' AND '.join(b for b in bounds if b)})")
    return ", ".join(counts)


@dataclass(frozen=True, slots=True)
class SearchRows:
    rows: list[SummaryRow]
    #: Exact when `exact`, else estimated from the sample (`SEARCH_SAMPLE`).
    total: int
    facets: FacetRows
    #: Every match was counted (no more than `SEARCH_SAMPLE` of them).
    exact: bool


async def search_tracks(
    conn: Executor, query: TrackQuery, tsquery: str, limit: int, offset: int
) -> SearchRows:
    """The page of the search, its total and facets: counted when the matches are no more
    than `SEARCH_SAMPLE`, else estimated from the first `SEARCH_SAMPLE` (their counts
    scaled to the estimated total)."""
    records = await conn.fetch(search_statement(query, tsquery, limit, offset), *query.args)
    first = records[0]
    exact = not first["sampled"]
    total = int(first["total"])
    scale = 1.0
    if not exact:
        estimate = max(SEARCH_SAMPLE + 1, round(total / min(1.0, max(first["share"], 1e-6))))
        scale, total = estimate / total, estimate
    facets = FacetRows(
        genre=[(name, round(n * scale)) for name, n in json.loads(first["genres"])],
        key=[(name, round(n * scale)) for name, n in json.loads(first["keys"])],
        bpm=[round(n * scale) for n in json.loads(first["bpms"])],
    )
    rows = [summary(r) for r in records if r["track_id"] is not None]
    return SearchRows(rows, total, facets, exact)


#: For each word of a search (`$1`) found nowhere in the catalog (as a prefix too when `$2`
#: says so: the last word), the closest known words by trigram similarity (pg_trgm).
CORRECTIONS = """
SELECT q.ord, c.word
  FROM unnest($1::text[], $2::bool[]) WITH ORDINALITY AS q(raw, prefix, ord)
 CROSS JOIN LATERAL (SELECT catalog_fold(q.raw) AS folded) f
 CROSS JOIN LATERAL (
       SELECT w.word FROM catalog_words w
        WHERE w.word % f.folded
        ORDER BY similarity(w.word, f.folded) DESC, w.word
        LIMIT 3) c
 WHERE length(f.folded) >= 3
   AND NOT EXISTS (
       SELECT 1 FROM catalog_words e
        WHERE e.word = f.folded
           OR (q.prefix AND e.word > f.folded AND e.word < f.folded || chr(1114111)))
"""
#: Which optional extensions this database has.
EXTENSIONS = "SELECT extname FROM pg_extension WHERE extname IN ('pg_trgm', 'unaccent')"


async def corrections(conn: Executor, words: list[str]) -> dict[int, list[str]]:
    """Index of the word (0-based) → its closest known words; words found need none."""
    prefix = [i == len(words) - 1 for i in range(len(words))]
    found: dict[int, list[str]] = {}
    for record in await conn.fetch(CORRECTIONS, words, prefix):
        found.setdefault(int(record["ord"]) - 1, []).append(record["word"])
    return found


async def extensions(conn: Executor) -> set[str]:
    return {r["extname"] for r in await conn.fetch(EXTENSIONS)}


def summary(record: asyncpg.Record) -> SummaryRow:
    return SummaryRow(
        track_id=record["track_id"],
        title=record["title"],
        artist=record["artist"],
        album=record["album"],
        genre=record["genre"],
        tags=list(record["tags"]),
        bpm=record["bpm"],
        musical_key=record["musical_key"],
        duration_seconds=record["duration_seconds"],
        visibility=record["visibility"],
        owner_id=record["owner_id"],
        plays=int(record["plays"]),
        created_at=record["created_at"],
        artwork_key=record["artwork_key"],
    )
