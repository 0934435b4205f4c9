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


#: A search reads at most `HEAD_SAMPLE` matches of its head tier (the tracks whose title,
#: artist and album alone hold every word: `catalog_head`, with its own full-text index) and
#: at most `SEARCH_SAMPLE` matches of the whole document, each in the table's order when
#: there are more; the latter's that are not head matches are the other tier's sample.
#: Reading a match costs about 2 µs on this machine (the visit of its table page, its
#: rank), a head match more (they are spread over the table): these bounds keep a broad
#: search near the cost of a narrow one (`tests/bench/bench_catalog.py`).
HEAD_SAMPLE = 300
SEARCH_SAMPLE = 500
#: The head tier first: a track whose title, artist and album alone hold every word of the
#: search ranks above any that needs its tags, genre or description for it; then the
#: weighted rank, then plays.
RANKING = "head DESC, rank DESC, plays DESC, track_id"


def search_statement(
    query: TrackQuery, tsquery: str, head_tsquery: str, limit: int, offset: int
) -> str:
    """One statement: the document's matches (at most `SEARCH_SAMPLE` + 1, from its index,
    the head matches among them told apart by `head_tsquery`: `tsquery` with every word
    restricted to the title, artist and album, weights A and B) and, when they are more
    than the sample, the head tier's (at most `HEAD_SAMPLE` + 1, from their own index),
    each ranked once; how many of each were read and the share of the table they were
    found in, the facets of the head tier's and of the others' separately, and the asked
    page of both tiers."""
    q, hq = query.param(tsquery), query.param(head_tsquery)
    lim, off = query.param(limit), query.param(offset)
    tsq, head_tsq = tsquery_of(q), tsquery_of(hq)
    columns = f"""t.track_id, t.genre, t.genre_key, t.musical_key, t.bpm, t.plays,
           ts_rank_cd({RANK_WEIGHTS}, t.search_document, {tsq}) AS rank,
           (t.ctid::text::point)[0] AS block"""
    return f"""
WITH found AS MATERIALIZED (
    SELECT {columns}, t.search_document @@ {head_tsq} AS head
      FROM tracks t
     WHERE t.search_document @@ {tsq} AND {query.where}
     LIMIT {SEARCH_SAMPLE + 1}
),
sample AS MATERIALIZED (SELECT * FROM found LIMIT {SEARCH_SAMPLE}),
broad AS MATERIALIZED (SELECT count(*) > {SEARCH_SAMPLE} AS sampled FROM found),
-- Only when the sample is not every match (a condition on no row of the scan: when it is
-- false, the head tier's index is not even read).
head_found AS MATERIALIZED (
    SELECT {columns}, true AS head
      FROM tracks t
     WHERE (SELECT sampled FROM broad)
       AND catalog_head(t.title, t.artist, t.album) @@ {tsq} AND {query.where}
     LIMIT {HEAD_SAMPLE + 1}
),
hits AS MATERIALIZED (
    (SELECT * FROM head_found LIMIT {HEAD_SAMPLE})
    UNION ALL (SELECT * FROM sample WHERE NOT (head AND (SELECT sampled FROM broad)))
),
page AS (SELECT track_id, head, rank, plays FROM hits ORDER BY {RANKING}
          LIMIT {lim} OFFSET {off}),
summary AS (
    SELECT count(*) FILTER (WHERE head) AS head_read,
           count(*) FILTER (WHERE NOT head) AS rest_read,
           (SELECT count(*) FROM head_found) > {HEAD_SAMPLE} AS head_sampled,
           (max(block) FILTER (WHERE head) + 1) / {_PAGES} AS head_share,
           (SELECT count(*) FROM sample) AS sample_read,
           (SELECT sampled FROM broad) AS sampled,
           -- The share of the table a sample was found in (an index's matches come in
           -- the table's order): the whole table holds about read / share.
           (SELECT max(block) + 1 FROM sample) / {_PAGES} AS sample_share,
           (SELECT coalesce(json_agg(json_build_array(g.name, g.head, g.rest)), '[]')
              FROM (SELECT min(genre) AS name, count(*) FILTER (WHERE head) AS head,
                           count(*) FILTER (WHERE NOT head) AS rest
                      FROM hits WHERE genre_key IS NOT NULL GROUP BY genre_key) g) AS genres,
           (SELECT coalesce(json_agg(json_build_array(k.name, k.head, k.rest)), '[]')
              FROM (SELECT musical_key AS name, count(*) FILTER (WHERE head) AS head,
                           count(*) FILTER (WHERE NOT head) AS rest
                      FROM hits WHERE musical_key IS NOT NULL GROUP BY musical_key) k) AS keys,
           json_build_array({_bpm_counts("head")}) AS head_bpms,
           json_build_array({_bpm_counts("NOT head")}) AS rest_bpms
      FROM hits
)
SELECT s.*, {SUMMARY_COLUMNS}
  FROM summary s
  LEFT JOIN (page p JOIN tracks t ON t.track_id = p.track_id) ON true
 ORDER BY p.head DESC, p.rank DESC, p.plays DESC, p.track_id"""  # noqa: S608 (TrackQuery)


#: The table's size in pages.
_PAGES = "greatest(1, pg_relation_size('tracks') / current_setting('block_size')::float8)"


def _bpm_counts(tier: str) -> str:
    counts = []
    for _, low, high in BPM_BUCKETS:
        bounds = [
            tier,
            f"bpm >= {low}" if low is not None else "",
            f"bpm <= {high}" if high is not None else "",
        ]
        counts.append(f"count(*) FILTER (WHERE {' AND '.join(b for b in bounds if b)})")
    return ", ".join(counts)


@dataclass(frozen=True, slots=True)
class Sample:
    """`read` matches, all there are (`whole`) or the first in the table's order, found in
    the first `share` of the table."""

    read: int
    whole: bool
    share: float

    @property
    def total(self) -> int:
        """Exact when `whole`; else estimated from the share of the table read (more
        than what was read)."""
        if self.whole:
            return self.read
        return max(self.read + 1, round(self.read / min(1.0, max(self.share, 1e-6))))


@dataclass(frozen=True, slots=True)
class SearchRows:
    rows: list[SummaryRow]
    #: The head tier's matches read.
    head: Sample
    #: The matches of the whole document read (both tiers).
    document: Sample
    #: The other tier's matches among `document`.
    rest_read: int
    #: Facet counts of the matches read, per tier: (name, head, rest); BPM buckets in order.
    genres: list[tuple[str, int, int]]
    keys: list[tuple[str, int, int]]
    bpms: list[tuple[int, int]]

    @property
    def exact(self) -> bool:
        """Every match was read (then the head tier's were too: they are among them)."""
        return self.document.whole

    def totals(self) -> tuple[int, int]:
        """How many tracks match in the head tier and in the other one: counted when every
        match was read, else estimated (`Sample.total`), the head tier's exact when it
        was read whole."""
        if self.exact:
            return self.head.read, self.rest_read
        head = self.head.total
        total = max(self.document.total, head + self.rest_read)
        return head, total - head


async def search_tracks(
    conn: Executor, query: TrackQuery, tsquery: str, head_tsquery: str, limit: int, offset: int
) -> SearchRows:
    """The page of the search and what it read (`search_statement`)."""
    statement = search_statement(query, tsquery, head_tsquery, limit, offset)
    records = await conn.fetch(statement, *query.args)
    first = records[0]
    return SearchRows(
        rows=[summary(r) for r in records if r["track_id"] is not None],
        head=Sample(int(first["head_read"]), not first["head_sampled"], first["head_share"] or 0.0),
        document=Sample(
            int(first["sample_read"]), not first["sampled"], first["sample_share"] or 0.0
        ),
        rest_read=int(first["rest_read"]),
        genres=[(n, h, r) for n, h, r in json.loads(first["genres"])],
        keys=[(n, h, r) for n, h, r in json.loads(first["keys"])],
        bpms=list(zip(json.loads(first["head_bpms"]), json.loads(first["rest_bpms"]), strict=True)),
    )


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
