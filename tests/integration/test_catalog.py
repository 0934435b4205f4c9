"""The catalog as a listener finds it: a catalog the test builds (genres, keys, BPMs,
accents, tags; private, unlisted, deleted and unfinished tracks among them), listed with
every filter and sort, searched (ranking, accents, prefixes, typos), with facet counts
checked against the rows the test wrote."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import pytest

from control.catalog.queries import BPM_BUCKETS
from control.catalog.service import CATALOG as CATALOG_KEY
from tests.accounts import user_headers
from tests.catalog import Track, insert_tracks, insert_user
from tests.streams import PUBLIC_URL, fresh_database

TRACKS = "/v1/tracks"
SEARCH = "/v1/tracks/search"

FEATURED = [
    Track("Deep House Journey", "Alice", "Deep House", ["deep", "vinyl"], 122, "Am", 301, plays=50),
    Track("Café del Mar Sunset", "Bob", "Balearic", ["chill"], 98, "C", 421, plays=500),
    Track("Techno Bunker", "Carl", "Techno", ["dark", "warehouse"], 132, "Fm", 361, plays=10),
    Track("Warehouse Rave", "Carl", "Techno", ["Warehouse"], 140, "Fm", 251, plays=5),
    Track("Sunrise", "Dana", "Ambient", ["calm"], 80, "D", 182, plays=1),
    Track(
        "Morning Coffee",
        "Dana",
        "Ambient",
        ["calm"],
        85,
        "D",
        193,
        description="Perfect at sunrise with a coffee",
        plays=1000,
    ),
    Track("Éléphant Rose", "Zoé", "Électro", ["french"], 128, "Gm", 244, plays=70, artwork=True),
    Track("Garage Days", "Eve", "UK Garage", ["deep"], 130, "Dm", 275, plays=30),
    Track("Drum Machine", "Finn", "Drum and Bass", ["rollers"], 174, "Em", 330, plays=44),
    Track("Bass Odyssey", "Finn", "drum and bass", ["rollers"], 172, "Em", 312, plays=43),
    Track("Hip Hop Classic", "Gus", "Hip Hop", ["boom"], 90, "Bbm", 199, plays=20),
    Track("Lonely Planet", "Hana", "Deep House", ["deep", "dub"], 118, "Am", 350, plays=15),
]
GENRES = ["Deep House", "Techno", "Ambient", "Disco", "Trance"]
KEYS = ["Am", "C", "Fm", "G", "Dm"]
FILLER_WORDS = ["Velvet", "Orbit", "Neon", "Paper", "Quartz", "Ripple", "Stone", "Tidal"]
#: Never listed to anyone but their owner (and the last three to no one).
HIDDEN = [
    Track("Secret House Tape", "Bob", "Deep House", ["deep"], 124, "Am", 222, visibility="private"),
    Track(
        "Unlisted House Promo", "Bob", "Deep House", ["deep"], 125, "Am", 223, visibility="unlisted"
    ),
    Track("Deleted House Track", "Bob", "Deep House", ["deep"], 126, "Am", 224, deleted=True),
    Track(
        "Processing House Demo", "Bob", "Deep House", ["deep"], 127, "Am", 225, status="processing"
    ),
    Track("Failed House Upload", "Bob", "Deep House", ["deep"], 121, "Am", 226, status="failed"),
]


def filler() -> list[Track]:
    tracks = []
    for i in range(24):
        word = FILLER_WORDS[i % len(FILLER_WORDS)]
        tracks.append(
            Track(
                f"{word} {['Motion', 'Signal', 'Avenue'][i % 3]} {i}",
                artist=f"Artist {i % 5}",
                genre=GENRES[i % len(GENRES)],
                tags=["filler", ["deep", "dub", "raw"][i % 3]],
                bpm=95 + 3 * i,
                key=KEYS[i % len(KEYS)],
                duration=150.5 + 7 * i,
                plays=100 + 11 * i,
                description=f"Number {i} of the house filler series" if i % 4 == 0 else "",
            )
        )
    return tracks


def fold(text: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFD", text.lower()) if not unicodedata.combining(c)
    )


def words(track: Track) -> set[str]:
    text = " ".join(
        [
            track.title,
            track.artist,
            track.album or "",
            *track.tags,
            track.genre or "",
            track.description,
        ]
    )
    return set(re.findall(r"\w+", fold(text)))


def matches(track: Track, query: str) -> bool:
    """What the search promises: every word, the last as a prefix, accents ignored."""
    terms = re.findall(r"\w+", fold(query))
    have = words(track)
    return all(t in have for t in terms[:-1]) and any(w.startswith(terms[-1]) for w in have)


def fresh(tracks: list[Track]) -> list[Track]:
    """Copies with new ids, for a new database."""
    return [replace(t, track_id=uuid.uuid4(), owner_id=None, tags=list(t.tags)) for t in tracks]


@dataclass
class Catalog:
    node: Any
    bob: uuid.UUID
    listed: list[Track]
    hidden: list[Track]
    database_url: str


async def build(make_client, make_database, *, without_trigrams: bool = False) -> Catalog:
    url = await fresh_database(make_database)
    conn = await asyncpg.connect(url)
    try:
        if without_trigrams:  # as on the embedded server: pg_trgm is not there
            await conn.execute("DROP EXTENSION IF EXISTS pg_trgm CASCADE")
        alice, bob = await insert_user(conn, "Alice"), await insert_user(conn, "Bob")
        featured = fresh(FEATURED)
        listed = await insert_tracks(conn, alice, [*featured[:1], *filler(), *featured[1:]])
        hidden = await insert_tracks(conn, bob, fresh(HIDDEN))
    finally:
        await conn.close()
    node = await make_client(database_url=url, public_url=PUBLIC_URL)
    return Catalog(node, bob, listed, hidden, url)


@pytest.fixture
async def catalog(make_client, make_database) -> Catalog:
    return await build(make_client, make_database)


async def get(node, path: str, headers: dict[str, str] | None = None, **params: Any) -> dict:
    response = await node.get(path, params=params, headers=headers or {})
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def titles(node, path: str = TRACKS, **params: Any) -> list[str]:
    body = await get(node, path, per_page=100, **params)
    assert body["total"] == len(body["tracks"])
    return [t["title"] for t in body["tracks"]]


FILTER_CASES: list[tuple[dict[str, str], Any]] = [
    ({"genre": "deep house"}, lambda t: t.genre == "Deep House"),
    ({"genre": "DRUM AND BASS"}, lambda t: (t.genre or "").lower() == "drum and bass"),
    ({"genre": "electro"}, lambda t: t.genre == "Électro"),
    ({"tags": "deep"}, lambda t: "deep" in t.tags),
    ({"tags": "warehouse,DARK"}, lambda t: {"warehouse", "dark"} <= {x.lower() for x in t.tags}),
    ({"tags": "filler,dub"}, lambda t: {"filler", "dub"} <= set(t.tags)),
    ({"artist": "finn"}, lambda t: t.artist == "Finn"),
    ({"artist": "zoe"}, lambda t: t.artist == "Zoé"),
    ({"min_duration": "300"}, lambda t: t.duration >= 300),
    ({"max_duration": "200"}, lambda t: t.duration <= 200),
    ({"min_duration": "200", "max_duration": "260"}, lambda t: 200 <= t.duration <= 260),
    ({"bpm_min": "128"}, lambda t: t.bpm >= 128),
    ({"bpm_max": "100"}, lambda t: t.bpm <= 100),
    ({"bpm_min": "120", "bpm_max": "130"}, lambda t: 120 <= t.bpm <= 130),
    ({"key": "Am"}, lambda t: t.key == "Am"),
    ({"key": "Bbm"}, lambda t: t.key == "Bbm"),
    ({"key": "Fm", "genre": "Techno", "bpm_min": "135"}, lambda t: t.title == "Warehouse Rave"),
]


async def test_every_filter_lists_exactly_the_public_ready_tracks_that_match(catalog):
    node = catalog.node
    everything = await titles(node)
    assert sorted(everything) == sorted(t.title for t in catalog.listed)
    for params, wanted in FILTER_CASES:
        expected = {t.title for t in catalog.listed if wanted(t)}
        assert expected, params
        assert set(await titles(node, **params)) == expected, params
    alice = catalog.listed[0].owner_id
    assert set(await titles(node, uploader_id=str(alice))) == {t.title for t in catalog.listed}
    assert await titles(node, uploader_id=str(catalog.bob)) == []  # all his are hidden


def sort_key(catalog: Catalog, sort: str):
    position = {t.title: i for i, t in enumerate(catalog.listed)}
    return {
        "created_at": lambda t: position[t.title],
        "popularity": lambda t: t.plays,
        "duration": lambda t: t.duration,
        "title": lambda t: fold(t.title),
    }[sort]


@pytest.mark.parametrize("sort", ["created_at", "popularity", "duration", "title"])
async def test_each_sort_in_both_orders(catalog, sort):
    for order in ("asc", "desc"):
        expected = sorted(catalog.listed, key=sort_key(catalog, sort), reverse=order == "desc")
        got = await titles(catalog.node, sort=sort, order=order)
        assert got == [t.title for t in expected], (sort, order)
    newest = await titles(catalog.node)  # default: newest first
    assert newest[0] == catalog.listed[-1].title


async def test_pages_cover_the_listing_once_with_the_total(catalog):
    seen: list[str] = []
    for page in range(1, 6):
        body = await get(catalog.node, TRACKS, sort="popularity", per_page=8, page=page)
        assert body["total"] == len(catalog.listed)
        assert body["page"] == page and body["per_page"] == 8
        seen += [t["title"] for t in body["tracks"]]
    assert seen == [t.title for t in sorted(catalog.listed, key=lambda t: -t.plays)]
    beyond = await get(catalog.node, TRACKS, per_page=8, page=9)
    assert beyond["tracks"] == [] and beyond["total"] == len(catalog.listed)
    genre = await get(catalog.node, TRACKS, genre="Techno", per_page=2, page=2)
    assert genre["total"] == sum(t.genre == "Techno" for t in catalog.listed)


async def test_a_summary_carries_the_metadata_and_media_urls(catalog):
    body = await get(catalog.node, TRACKS, artist="Zoé")
    (track,) = body["tracks"]
    elephant = next(t for t in catalog.listed if t.artist == "Zoé")
    tid = str(elephant.track_id)
    assert track["track_id"] == tid
    assert (track["title"], track["genre"], track["key"], track["bpm"]) == (
        "Éléphant Rose",
        "Électro",
        "Gm",
        128,
    )
    assert track["tags"] == ["french"] and track["plays"] == 70
    assert track["duration_seconds"] == 244 and track["visibility"] == "public"
    assert track["uploader_id"] == str(elephant.owner_id)
    assert track["hls_master_url"] == f"{PUBLIC_URL}/v1/tracks/{tid}/master.m3u8"
    assert track["waveform_url"] == f"{PUBLIC_URL}/v1/tracks/{tid}/waveform.json"
    assert track["artwork_url"] == f"{PUBLIC_URL}/v1/tracks/{tid}/artwork.jpg"
    other = (await get(catalog.node, TRACKS, artist="Gus"))["tracks"][0]
    assert other["artwork_url"] is None


async def search(node, q: str, **params: Any) -> dict:
    return await get(node, SEARCH, q=q, per_page=100, **params)


async def test_search_ranks_title_above_description_and_matches_like_a_person_expects(catalog):
    node = catalog.node
    found = [t["title"] for t in (await search(node, "sunrise"))["tracks"]]
    # The title match first, though the description match has a thousand times the plays.
    assert found[:2] == ["Sunrise", "Morning Coffee"]
    assert "Café del Mar Sunset" not in found  # "sunset" is not "sunrise"
    cafe = [t["title"] for t in (await search(node, "cafe"))["tracks"]]
    assert cafe == ["Café del Mar Sunset"]  # accents ignored in the query...
    assert [t["title"] for t in (await search(node, "ÉLÉPHANT"))["tracks"]] == ["Éléphant Rose"]
    assert [t["title"] for t in (await search(node, "zoe"))["tracks"]] == ["Éléphant Rose"]
    deep_ho = {t["title"] for t in (await search(node, "deep ho"))["tracks"]}
    assert "Deep House Journey" in deep_ho and "Lonely Planet" in deep_ho
    assert deep_ho == {t.title for t in catalog.listed if matches(t, "deep ho")}
    assert "Garage Days" not in deep_ho  # deep, but nothing starting with "ho"
    artist_first = [t["title"] for t in (await search(node, "carl"))["tracks"]]
    assert set(artist_first) == {"Techno Bunker", "Warehouse Rave"}


async def test_hidden_tracks_are_never_found_by_others(catalog):
    node = catalog.node
    hidden = {t.title for t in catalog.hidden}
    _, listener = await user_headers(node, "listener")
    for headers in ({}, listener):
        for params in ({}, {"genre": "Deep House"}, {"mine": "true"} if headers else {}):
            body = await get(node, TRACKS, headers, per_page=100, **params)
            assert not hidden & {t["title"] for t in body["tracks"]}
        body = await get(node, SEARCH, headers, q="house", per_page=100)
        assert not hidden & {t["title"] for t in body["tracks"]}
    refused = await node.get(TRACKS, params={"mine": "true"})
    assert refused.status == 401
    assert "mine=true" in (await refused.json())["error"]


async def test_mine_adds_the_callers_private_and_unlisted_tracks(catalog):
    node = catalog.node
    bob, headers = await user_headers(node)
    conn = await asyncpg.connect(catalog.database_url)
    try:  # Bob's hidden tracks become this signed-up account's
        await conn.execute(
            "UPDATE tracks SET owner_id = $1 WHERE owner_id = $2",
            uuid.UUID(bob["user_id"]),
            catalog.bob,
        )
    finally:
        await conn.close()
    own = {"Secret House Tape", "Unlisted House Promo"}
    body = await get(node, TRACKS, headers, mine="true", per_page=100)
    got = {t["title"]: t["visibility"] for t in body["tracks"]}
    assert own <= set(got) and got["Secret House Tape"] == "private"
    assert got["Unlisted House Promo"] == "unlisted"
    assert not {"Deleted House Track", "Processing House Demo", "Failed House Upload"} & set(got)
    assert body["total"] == len(catalog.listed) + 2
    found = await get(node, SEARCH, headers, q="house tape", mine="true")
    assert [t["title"] for t in found["tracks"]] == ["Secret House Tape"]
    assert (await get(node, SEARCH, headers, q="house tape"))["tracks"] == []


def expected_facets(tracks: list[Track]) -> dict[str, Any]:
    genres: Counter[str] = Counter(fold(t.genre) for t in tracks if t.genre)
    keys = Counter(t.key for t in tracks if t.key)
    buckets = [
        sum(
            1
            for t in tracks
            if t.bpm is not None and (lo is None or t.bpm >= lo) and (hi is None or t.bpm <= hi)
        )
        for _, lo, hi in BPM_BUCKETS
    ]
    return {"genre": dict(genres), "key": dict(keys), "bpm": buckets}


def facets_seen(facets: dict[str, Any]) -> dict[str, Any]:
    counts = [b["count"] for b in facets["bpm"]]
    return {
        "genre": {fold(g["value"]): g["count"] for g in facets["genre"]},
        "key": {k["value"]: k["count"] for k in facets["key"]},
        "bpm": counts,
    }


@pytest.mark.parametrize(
    ("q", "params"),
    [("deep", {}), ("house", {}), ("a", {}), ("filler", {"bpm_min": "110"}), ("rollers", {})],
)
async def test_facets_count_every_match_not_only_the_page(catalog, q, params):
    body = await get(catalog.node, SEARCH, q=q, per_page=3, **params)
    wanted = [
        t
        for t in catalog.listed
        if matches(t, q) and ("bpm_min" not in params or t.bpm >= int(params["bpm_min"]))
    ]
    assert body["total"] == len(wanted) and len(body["tracks"]) == min(3, len(wanted))
    assert facets_seen(body["facets"]) == expected_facets(wanted)
    genre_counts = [g["count"] for g in body["facets"]["genre"]]
    assert genre_counts == sorted(genre_counts, reverse=True)
    assert [b["range"] for b in body["facets"]["bpm"]] == [b[0] for b in BPM_BUCKETS]


async def test_typos_are_forgiven_where_postgres_has_pg_trgm(catalog):
    node = catalog.node
    if not node.app[CATALOG_KEY].trigram:
        pytest.skip("this PostgreSQL has no pg_trgm: search is not typo-tolerant")
    found = [t["title"] for t in (await search(node, "techo bunker"))["tracks"]]
    assert found[0] == "Techno Bunker"
    assert "Warehouse Rave" in [t["title"] for t in (await search(node, "wharehouse"))["tracks"]]
    assert [t["title"] for t in (await search(node, "elefant"))["tracks"]] == ["Éléphant Rose"]
    # A word that exists is searched as typed, not widened to its neighbours.
    assert next(t["title"] for t in (await search(node, "sunrise"))["tracks"]) == "Sunrise"


async def test_without_pg_trgm_search_still_folds_accents_and_prefixes(make_client, make_database):
    catalog = await build(make_client, make_database, without_trigrams=True)
    node = catalog.node
    assert node.app[CATALOG_KEY].trigram is False
    assert (await search(node, "techo"))["tracks"] == []  # no typo tolerance here
    assert [t["title"] for t in (await search(node, "techno bunk"))["tracks"]] == ["Techno Bunker"]
    assert [t["title"] for t in (await search(node, "cafe"))["tracks"]] == ["Café del Mar Sunset"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "!!!"}, "q"),
        ({"q": "house", "bpm_min": "150", "bpm_max": "100"}, "bpm_min"),
        ({"q": "house", "key": "H"}, "key"),
        ({"q": "house", "per_page": "101"}, "per_page"),
        ({"q": "house", "tags": ",,"}, "tags"),
        ({"q": "house", "uploader_id": "42"}, "uploader_id"),
    ],
)
async def test_bad_search_input_is_a_400_naming_the_field(catalog, params, field):
    response = await catalog.node.get(SEARCH, params=params)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == 400 and field in body["error"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "plays"}, "sort"),
        ({"order": "up"}, "order"),
        ({"min_duration": "-1"}, "min_duration"),
        ({"min_duration": "300", "max_duration": "100"}, "min_duration"),
        ({"page": "0"}, "page"),
        ({"bogus": "1"}, "bogus"),
    ],
)
async def test_bad_listing_input_is_a_400_naming_the_field(catalog, params, field):
    response = await catalog.node.get(TRACKS, params=params)
    assert response.status == 400
    assert field in (await response.json())["error"]


async def test_broad_searches_and_listings_are_estimated_beyond_their_sample(catalog, monkeypatch):
    """With samples of 10 (1 000 and 500 in production): a search matching more answers
    from 10 matches, says its total and facets are estimates, and still finds only matches;
    a listing beyond 10 tracks still pages through all of them with an estimated total."""
    from control.catalog import queries

    monkeypatch.setattr(queries, "SEARCH_SAMPLE", 10)
    monkeypatch.setattr(queries, "COUNTED", 10)
    node = catalog.node
    wanted = {t.title for t in catalog.listed if matches(t, "filler")}
    assert len(wanted) == 24
    broad = await search(node, "filler")
    assert broad["total_exact"] is False and broad["facets_approximate"] is True
    assert broad["total"] > 10
    found = [t["title"] for t in broad["tracks"]]
    assert len(found) == 10 and set(found) <= wanted
    assert sum(g["count"] for g in broad["facets"]["genre"]) >= 10
    narrow = await search(node, "rollers")
    assert narrow["total_exact"] is True and narrow["facets_approximate"] is False
    assert narrow["total"] == 2
    assert facets_seen(narrow["facets"]) == expected_facets(
        [t for t in catalog.listed if matches(t, "rollers")]
    )
    everything = await get(node, TRACKS, per_page=100)
    assert everything["total_exact"] is False and everything["total"] > 10
    assert len(everything["tracks"]) == len(catalog.listed)
    tagged = await get(node, TRACKS, tags="FILLER,deep", per_page=100, sort="title", order="asc")
    wanted_tagged = sorted(
        (t for t in catalog.listed if {"filler", "deep"} <= set(t.tags)),
        key=lambda t: fold(t.title),
    )
    assert len(wanted_tagged) > 5
    broad_tags = await get(
        node, TRACKS, tags="filler", per_page=5, page=2, sort="title", order="asc"
    )
    assert broad_tags["total_exact"] is False  # 24 > 10: found by walking the title index
    every_filler = sorted(
        (t for t in catalog.listed if "filler" in t.tags), key=lambda t: fold(t.title)
    )
    assert [t["title"] for t in broad_tags["tracks"]] == [t.title for t in every_filler[5:10]]
    assert [t["title"] for t in tagged["tracks"]] == [t.title for t in wanted_tagged]
    techno = await get(node, TRACKS, genre="Techno")
    assert techno["total_exact"] is True
    assert techno["total"] == sum(t.genre == "Techno" for t in catalog.listed)
