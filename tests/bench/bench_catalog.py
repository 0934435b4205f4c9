"""Catalog: `GET /v1/tracks` and `GET /v1/tracks/search` (with facets) on 100 000 tracks
(issue 13: p99 ≤ 20 ms).

A fresh database is migrated, then filled by `INSERT … SELECT generate_series` (fixed
seed): 500 DJs, 100 000 tracks with titles, artists and descriptions made of music words,
20 genres, 24 keys, BPMs 70–179, 30 tags, plays on a long tail, 85 % public (the rest
private or unlisted), 3 % still processing, 2 % deleted; then VACUUM ANALYZE. Our node
runs in its own process (rate limits off). One client sends the requests one after the
other (latency is the whole request on loopback, JSON parsing included), each a filter /
sort combination or a search drawn at random from varied lists (genres, pages, words,
prefixes, typos, accents), never one URL repeated. Before the load it prints the plans
(EXPLAIN ANALYZE) of a few statements, to show which indexes answer them.

    .venv/bin/python -m tests.bench.bench_catalog        # or: make bench
    BENCH_TRACKS=20000 BENCH_REQUESTS=500 .venv/bin/python -m tests.bench.bench_catalog
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from urllib.parse import urlencode

import aiohttp
import asyncpg

from control.catalog import queries
from control.catalog.queries import TrackQuery
from control.catalog.schemas import TrackListQuery
from control.catalog.service import HEAD_WEIGHTS, track_query, tsquery_text
from mediaserver.migrate import apply_migrations
from tests.bench.harness import (
    cpu_seconds,
    env_int,
    fresh_database,
    percentile,
    print_table,
    run_node,
)

P99_TARGET_MS = 20.0
WORDS = (
    "deep night sun rise dream journey house groove soul velvet orbit neon paper quartz "
    "ripple stone tidal echo shadow light fire water ocean river moon star city street "
    "dance floor rhythm pulse bass drum kick snare vinyl tape dust gold silver midnight "
    "morning sunset horizon desert forest garden island valley mountain summer winter "
    "autumn spring storm rain thunder cloud wind breeze wave tide harbor station train "
    "highway motor engine machine circuit signal static radio tower bridge tunnel window "
    "mirror glass crystal diamond pearl velour silk cotton leather smoke ember spark flame "
    "heat cold frost ice snow blossom bloom petal rose lotus orchid jasmine cafe élan "
    "éclair soirée rêve lumière été mémoire fantôme"
).split()
GENRES = (
    "Deep House,Tech House,Techno,Minimal,Trance,Progressive House,Drum and Bass,Dubstep,"
    "UK Garage,Disco,Nu Disco,Funk,Soul,Hip Hop,Ambient,Downtempo,Electro,Breakbeat,"
    "Afro House,Balearic"
).split(",")
KEYS = [
    f"{n}{m}"
    for n in ("A", "Bb", "B", "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab")
    for m in ("", "m")
]
TAGS = (
    "deep,vinyl,chill,dark,warehouse,peak,warmup,closing,dub,raw,melodic,vocal,instrumental,"
    "acid,analog,groovy,uplifting,hypnotic,jazzy,tribal,latin,afro,organic,lofi,club,radio,"
    "edit,remix,bootleg,live"
).split(",")

GENERATE = """
SELECT setseed(0.1337);
INSERT INTO users (user_id, email, name, password_hash, role)
SELECT gen_random_uuid(), 'dj' || i || '@bench.example.com', 'DJ ' || i, 'x', 'dj'
  FROM generate_series(1, 500) AS i;
CREATE TEMP TABLE bench_users AS
SELECT (row_number() OVER (ORDER BY user_id)) - 1 AS n, user_id FROM users;
CREATE TEMP TABLE bench_tracks AS
WITH v AS (SELECT $1::text[] AS words, $2::text[] AS genres, $3::text[] AS keys,
                  $4::text[] AS tags)
SELECT i, gen_random_uuid() AS track_id, u.user_id AS owner_id,
       initcap(v.words[1 + floor(random() * cardinality(v.words))::int]) || ' '
         || initcap(v.words[1 + floor(random() * cardinality(v.words))::int])
         || CASE WHEN random() < 0.4
                 THEN ' ' || initcap(v.words[1 + floor(random() * cardinality(v.words))::int])
                 ELSE '' END AS title,
       CASE WHEN random() < 0.5 THEN 'DJ ' ELSE '' END
         || initcap(v.words[1 + (i * 31) % cardinality(v.words)]) || ' '
         || initcap(v.words[1 + (i / 7) % cardinality(v.words)]) AS artist,
       v.genres[1 + floor(random() * cardinality(v.genres))::int] AS genre,
       v.keys[1 + floor(random() * cardinality(v.keys))::int] AS musical_key,
       ARRAY[v.tags[1 + floor(random() * cardinality(v.tags))::int],
             v.tags[1 + floor(random() * cardinality(v.tags))::int]] AS tags,
       70 + floor(random() * 110)::int AS bpm,
       90 + random() * 510 AS duration,
       CASE WHEN random() < 0.5
            THEN 'A ' || v.words[1 + floor(random() * cardinality(v.words))::int] || ' track for '
                 || v.words[1 + floor(random() * cardinality(v.words))::int] || ' sets'
            ELSE '' END AS description,
       floor(exp(random() * 11))::bigint AS plays,
       CASE WHEN random() < 0.85 THEN 'public' WHEN random() < 0.66 THEN 'private'
            ELSE 'unlisted' END AS visibility,
       CASE WHEN random() < 0.97 THEN 'ready' ELSE 'processing' END AS status,
       random() < 0.02 AS deleted,
       now() - random() * interval '3 years' AS created_at
  FROM generate_series(1, $5::int) AS i
 CROSS JOIN v
  JOIN bench_users u ON u.n = i % 500;
INSERT INTO uploads (upload_id, owner_id, filename, title, artist, content_type, size_bytes,
                     duration_seconds, status, source_key, hls_prefix, created_at)
SELECT track_id, owner_id, 'track.mp3', title, artist, 'audio/mpeg', 4000000, duration,
       status, 'uploads/' || track_id || '/source.mp3', 'uploads/' || track_id || '/hls',
       created_at
  FROM bench_tracks;
INSERT INTO tracks (track_id, owner_id, title, artist, description, tags, genre, bpm,
                    musical_key, visibility, duration_seconds, artwork_key, waveform_key,
                    hls_master_key, plays, created_at, deleted_at)
SELECT track_id, owner_id, title, artist, description, tags, genre, bpm, musical_key,
       visibility, duration, CASE WHEN i % 3 = 0 THEN 'artwork.jpg' END, 'waveform.json',
       'master.m3u8', plays, created_at, CASE WHEN deleted THEN created_at END
  FROM bench_tracks;
"""


async def generate(url: str, tracks: int) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        # Several statements with parameters: one at a time (asyncpg prepares each).
        statements = [s.strip() for s in GENERATE.split(";\n") if s.strip()]
        args = (list(WORDS), GENRES, KEYS, TAGS, tracks)
        for statement in statements:
            wanted = [a for n, a in enumerate(args, 1) if f"${n}" in statement]
            await conn.execute(statement, *wanted)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


LIST_KINDS = (
    "no filter",
    "genre",
    "bpm range",
    "key",
    "tags",
    "artist",
    "uploader",
    "duration+genre",
)
SEARCH_KINDS = ("one word", "word + prefix", "typo", "genre name", "accents", "two words")


def list_url(rng: random.Random, uploaders: list[str], artists: list[str]) -> tuple[str, str]:
    params: dict[str, object] = {}
    kind = rng.randrange(len(LIST_KINDS))
    if kind == 1:
        params["genre"] = rng.choice(GENRES)
    elif kind == 2:
        low = rng.randrange(70, 170)
        params.update(bpm_min=low, bpm_max=low + rng.choice((2, 5, 10)))
    elif kind == 3:
        params["key"] = rng.choice(KEYS)
    elif kind == 4:
        params["tags"] = ",".join(rng.sample(TAGS, rng.choice((1, 2))))
    elif kind == 5:
        params["artist"] = rng.choice(artists)
    elif kind == 6:
        params["uploader_id"] = rng.choice(uploaders)
    elif kind == 7:
        low = rng.randrange(90, 500)
        params.update(min_duration=low, max_duration=low + 30, genre=rng.choice(GENRES))
    params["sort"] = rng.choice(("created_at", "popularity", "duration", "title"))
    params["order"] = rng.choice(("asc", "desc"))
    params["page"] = rng.choice((1, 1, 1, 2, 3, 5, 10))
    return LIST_KINDS[kind], f"/v1/tracks?{urlencode(params)}"


def search_url(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(len(SEARCH_KINDS))
    word, other = rng.choice(WORDS), rng.choice(WORDS)
    if kind == 0:
        q = word
    elif kind == 1:
        q = f"{word} {other[: rng.randrange(2, max(3, len(other)))]}"  # a prefix
    elif kind == 2:
        q = word[:-1] if len(word) > 4 else word + "x"  # a typo (pg_trgm)
    elif kind == 3:
        q = f"{rng.choice(GENRES)}"
    elif kind == 4:
        q = rng.choice(("cafe", "soiree", "reve", "lumiere", "ete", "memoire", "elan"))
    else:
        q = f"{word} {other}"
    params: dict[str, object] = {"q": q}
    if rng.random() < 0.3:
        params["genre"] = rng.choice(GENRES)
    if rng.random() < 0.2:
        low = rng.randrange(70, 160)
        params.update(bpm_min=low, bpm_max=low + 20)
    if rng.random() < 0.2:
        params["page"] = rng.choice((2, 3))
    return SEARCH_KINDS[kind], f"/v1/tracks/search?{urlencode(params)}"


async def explain(url: str, artist: str) -> list[str]:
    """Plans of a few statements as the service builds them: the indexes used, the time."""
    cases = [
        ("newest", TrackListQuery(), "created_at", "desc", None),
        ("genre by plays", TrackListQuery(genre="Techno"), "popularity", "desc", None),
        ("artist", TrackListQuery(artist=artist), "title", "asc", None),
        ("bpm range", TrackListQuery(bpm_min=120, bpm_max=124), "created_at", "desc", None),
        ("tag", TrackListQuery(tags="deep"), "created_at", "desc", None),
        ("tags", TrackListQuery(tags="deep,vinyl"), "title", "asc", None),
        ("search 'deep ho'", TrackListQuery(), "", "", ["deep", "ho"]),
        ("search 'night'", TrackListQuery(), "", "", ["night"]),
        ("search 'house'", TrackListQuery(), "", "", ["house"]),
        ("search 'velvet sun'", TrackListQuery(), "", "", ["velvet", "sun"]),
    ]
    lines = []
    conn = await asyncpg.connect(url)
    try:
        for name, filters, sort, order, words in cases:
            query: TrackQuery = track_query(filters, None)
            if words is None:
                _, exact = await queries.count_tracks(conn, query)
                sql = queries.list_statement(query, sort, order, 20, 0, broad=not exact)
            else:
                text, head = tsquery_text(words, {}), tsquery_text(words, {}, HEAD_WEIGHTS)
                sql = queries.search_statement(query, text, head, 20, 0)
            plan = [r[0] for r in await conn.fetch(f"EXPLAIN ANALYZE {sql}", *query.args)]
            used = sorted({w for line in plan for w in line.split() if w.endswith("_idx")})
            total = next(line for line in plan if line.startswith("Execution Time"))
            lines.append(f"{name}: {', '.join(used) or 'no index'}; {total}")
    finally:
        await conn.close()
    return lines


async def load(base: str, urls: list[tuple[str, str]]) -> tuple[dict[str, list[float]], int]:
    """Latency (ms) of each answered request by kind, and the number of failed ones."""
    latencies: dict[str, list[float]] = {}
    errors = 0
    async with aiohttp.ClientSession() as session:
        for kind, url in urls:
            started = time.perf_counter()
            async with session.get(base + url) as response:
                await response.json()
                ok = response.status == 200
            if ok:
                latencies.setdefault(kind, []).append(1000 * (time.perf_counter() - started))
            else:
                errors += 1
    return latencies, errors


def every(latencies: dict[str, list[float]]) -> list[float]:
    return [ms for values in latencies.values() for ms in values]


def row(name: str, ms: list[float], errors: int) -> tuple[str, str, str, str]:
    if not ms:
        return (name, "no answers", "-", f"p99 <= {P99_TARGET_MS:.0f} ms")
    figures = (
        f"p50 {percentile(ms, 50):.1f} / p90 {percentile(ms, 90):.1f} / "
        f"p99 {percentile(ms, 99):.1f} / max {max(ms):.1f} ms"
    )
    return (name, figures, f"{len(ms):,} ok, {errors} errors", f"p99 <= {P99_TARGET_MS:.0f} ms")


async def run() -> str:
    tracks, requests = env_int("BENCH_TRACKS", 100_000), env_int("BENCH_REQUESTS", 1500)
    rng = random.Random(13)
    async with fresh_database() as database:
        await apply_migrations(database)
        seconds = await generate(database, tracks)
        conn = await asyncpg.connect(database)
        try:
            uploaders = [str(r[0]) for r in await conn.fetch("SELECT user_id FROM users")]
            artists = [r[0] for r in await conn.fetch("SELECT DISTINCT artist FROM tracks")]
            trigram = bool(
                await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")
            )
        finally:
            await conn.close()
        plans = await explain(database, artists[0])
        for line in plans:
            print("  plan:", line, flush=True)
        lists = [list_url(rng, uploaders, artists) for _ in range(requests)]
        searches = [search_url(rng) for _ in range(requests)]
        async with run_node(database) as node:
            await load(node.base_url, lists[:100] + searches[:100])  # warm-up
            before = cpu_seconds(node.pid)
            list_ms, list_errors = await load(node.base_url, lists)
            search_ms, search_errors = await load(node.base_url, searches)
            cpu = cpu_seconds(node.pid) - before
        load_average = os.getloadavg()[0]
    notes = [
        f"{tracks:,} tracks generated in {seconds:.0f} s; {len(set(lists)):,} distinct listing"
        f" URLs, {len(set(searches)):,} distinct searches; one client, requests back to back",
        f"machine load average (1 min) at the end: {load_average:.1f} on {os.cpu_count()} cores",
        f"pg_trgm {'present: typo corrections on' if trigram else 'absent: no typo corrections'}",
        f"node CPU per request {1000 * cpu / max(1, len(lists) + len(searches)):.2f} ms",
        *plans,
    ]
    return print_table(
        f"Catalog on {tracks:,} tracks (latency through the HTTP API on loopback)",
        [
            row("GET /v1/tracks (filters, sorts, pages)", every(list_ms), list_errors),
            *(row(f"  {kind}", list_ms.get(kind, []), 0) for kind in LIST_KINDS),
            row("GET /v1/tracks/search (+ facets)", every(search_ms), search_errors),
            *(row(f"  {kind}", search_ms.get(kind, []), 0) for kind in SEARCH_KINDS),
            row("both", every(list_ms) + every(search_ms), list_errors + search_errors),
        ],
        notes,
        reference="answered",
    )


def test_catalog() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    asyncio.run(run())
