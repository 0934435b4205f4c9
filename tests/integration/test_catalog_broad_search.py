"""Broad searches (more matches than a search reads) as a listener sees them: the title and
artist matches come first and in their true order however many tag and description
matches there are and wherever they are in the table; the total and facets say they are
estimates, and the pages say whether they are exactly the ranking's."""

from __future__ import annotations

from typing import Any

import asyncpg

from control.catalog import queries
from control.catalog.queries import SEARCH_SAMPLE
from tests.catalog import Track, insert_tracks, insert_user
from tests.streams import PUBLIC_URL, fresh_database

SEARCH = "/v1/tracks/search"
GENRES = ["Techno", "Ambient", "Disco"]


def tag_matches(count: int) -> list[Track]:
    """`count` tracks that match "aurora" by their tags or description only, popular ones."""
    return [
        Track(
            f"Tape {i}",
            artist=f"Crew {i % 7}",
            genre=GENRES[i % 3],
            tags=["aurora"] if i % 2 else ["night"],
            description="" if i % 2 else "Recorded under the aurora",
            bpm=100 + i % 50,
            key="Am",
            plays=10_000 + i,
        )
        for i in range(count)
    ]


async def build(make_client, make_database, tracks: list[Track]) -> Any:
    url = await fresh_database(make_database)
    conn = await asyncpg.connect(url)
    try:
        owner = await insert_user(conn, "Owner")
        await insert_tracks(conn, owner, tracks)
        await conn.execute("ANALYZE tracks")  # the planner's statistics, as autovacuum keeps
    finally:
        await conn.close()
    return await make_client(database_url=url, public_url=PUBLIC_URL)


async def search(node, q: str, **params: Any) -> dict:
    response = await node.get(SEARCH, params={"q": q, **params})
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def test_the_newest_title_match_is_first_of_a_broad_search(make_client, make_database):
    body_only = tag_matches(SEARCH_SAMPLE + 60)
    # The newest rows (inserted last: the end of the table), with no plays at all.
    artist_match = Track("Northern Lights", artist="Aurora Collective", genre="Ambient", plays=0)
    title_match = Track("Aurora", artist="Someone", genre="Ambient", plays=0)
    node = await build(make_client, make_database, [*body_only, artist_match, title_match])

    found = await search(node, "aurora", per_page=20)
    titles = [t["title"] for t in found["tracks"]]
    assert titles[:2] == ["Aurora", "Northern Lights"]  # title, then artist, then the rest
    assert len(titles) == 20
    # The other 18 are the best of a sample of the tag and description matches.
    assert found["ranking_exact"] is False
    assert found["total_exact"] is False and found["facets_approximate"] is True
    matching = 2 + sum(1 for t in body_only if "aurora" in t.tags or t.description)
    assert abs(found["total"] - matching) <= matching * 0.15  # the planner's estimate
    genres = {g["value"]: g["count"] for g in found["facets"]["genre"]}
    assert set(genres) == set(GENRES)
    assert abs(sum(genres.values()) - found["total"]) <= 3  # scaled to the total
    # A page within the head tier is exactly the ranking's (a prefix, in capitals, too).
    top = await search(node, "AURO", per_page=2)
    assert [t["title"] for t in top["tracks"]] == ["Aurora", "Northern Lights"]
    assert top["ranking_exact"] is True and top["total_exact"] is False
    # Page 2 lies among the tag and description matches, of which a sample was read.
    second = await search(node, "aurora", per_page=20, page=2)
    assert second["ranking_exact"] is False
    assert not {"Aurora", "Northern Lights"} & {t["title"] for t in second["tracks"]}

    # A narrow search reads everything: all exact.
    narrow = await search(node, "northern")
    assert [t["title"] for t in narrow["tracks"]] == ["Northern Lights"]
    assert narrow["total"] == 1 and narrow["total_exact"] and narrow["ranking_exact"]
    assert narrow["facets_approximate"] is False


async def test_a_head_tier_beyond_its_sample_says_its_ranking_is_approximate(
    make_client, make_database, monkeypatch
):
    """With samples of 5 (500 in production): 8 title matches and 10 tag matches."""
    monkeypatch.setattr(queries, "HEAD_SAMPLE", 5)
    monkeypatch.setattr(queries, "SEARCH_SAMPLE", 5)
    heads = [Track(f"Aurora {i}", artist="Someone", genre="Disco", plays=i) for i in range(8)]
    node = await build(make_client, make_database, [*tag_matches(20), *heads])
    found = await search(node, "aurora", per_page=5)
    assert found["ranking_exact"] is False and found["total_exact"] is False
    assert found["total"] > 10
    assert all(t["title"].startswith("Aurora ") for t in found["tracks"])
