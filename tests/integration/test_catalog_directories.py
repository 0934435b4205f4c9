"""The playlist and podcast directories: only public ones listed, searchable (accents,
prefix, title above description), filtered, paged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from tests.catalog import insert_user
from tests.streams import PUBLIC_URL, fresh_database

PLAYLISTS = "/v1/playlists/directory"
PODCASTS = "/v1/podcasts/directory"
T0 = datetime(2026, 2, 1, tzinfo=UTC)


async def add_playlist(
    conn, owner, title, description="", *, visibility="public", ready=True, deleted=False, minutes=0
) -> uuid.UUID:
    playlist_id = uuid.uuid4()
    created = T0 + timedelta(minutes=minutes)
    await conn.execute(
        "INSERT INTO playlists (playlist_id, owner_id, title, description, visibility, hls_ready,"
        " created_at, updated_at, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
        playlist_id,
        owner,
        title,
        description,
        visibility,
        ready,
        created,
        created if deleted else None,
    )
    return playlist_id


async def add_podcast(
    conn,
    owner,
    title,
    description,
    *,
    author="DJ Ana",
    category="Music",
    language="en-us",
    deleted=False,
    minutes=0,
    paid=False,
) -> uuid.UUID:
    podcast_id = uuid.uuid4()
    created = T0 + timedelta(minutes=minutes)
    await conn.execute(
        "INSERT INTO podcasts (podcast_id, owner_id, title, description, author, language,"
        " image_url, category, owner_name, owner_email, feed_guid, monetization_enabled,"
        " created_at, updated_at, deleted_at) VALUES ($1, $2, $3, $4, $5, $6,"
        " 'https://img.example.com/a.jpg', $7, 'Ana', 'ana@example.com', $1, $8, $9, $9, $10)",
        podcast_id,
        owner,
        title,
        description,
        author,
        language,
        category,
        paid,
        created,
        created if deleted else None,
    )
    return podcast_id


async def names(node, path, key, **params) -> list[str]:
    response = await node.get(path, params=params)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["total"] == len(body[key]) or "per_page" in params
    return [entry["title"] for entry in body[key]]


async def test_the_playlist_directory_lists_and_finds_public_ready_playlists(
    make_client, make_database
):
    url = await fresh_database(make_database)
    conn = await asyncpg.connect(url)
    try:
        owner = await insert_user(conn)
        warm = await add_playlist(conn, owner, "Friday Warm-up", "Deep house to start", minutes=1)
        await add_playlist(conn, owner, "Soirée Électro", "Late night", minutes=2)
        await add_playlist(conn, owner, "Morning", "Warm-up for early risers", minutes=3)
        await add_playlist(conn, owner, "Warm Private", visibility="private", minutes=4)
        await add_playlist(conn, owner, "Warm Unready", ready=False, minutes=5)
        await add_playlist(conn, owner, "Warm Deleted", deleted=True, minutes=6)
    finally:
        await conn.close()
    node = await make_client(database_url=url, public_url=PUBLIC_URL)
    assert await names(node, PLAYLISTS, "playlists") == [
        "Morning",
        "Soirée Électro",
        "Friday Warm-up",
    ]
    # Title match above description match; the last word a prefix; hidden ones never.
    assert await names(node, PLAYLISTS, "playlists", q="warm") == ["Friday Warm-up", "Morning"]
    assert await names(node, PLAYLISTS, "playlists", q="soiree electro") == ["Soirée Électro"]
    assert await names(node, PLAYLISTS, "playlists", q="private") == []
    body = await (await node.get(PLAYLISTS, params={"q": "friday"})).json()
    (entry,) = body["playlists"]
    assert entry["playlist_id"] == str(warm) and entry["track_count"] == 0
    assert entry["hls_url"] == f"{PUBLIC_URL}/v1/playlists/{warm}/stream.m3u8"
    page = await (await node.get(PLAYLISTS, params={"per_page": 2, "page": 2})).json()
    assert page["total"] == 3 and [p["title"] for p in page["playlists"]] == ["Friday Warm-up"]
    bad = await node.get(PLAYLISTS, params={"q": ""})
    assert bad.status == 400 and "q" in (await bad.json())["error"]


async def test_the_podcast_directory_filters_and_searches(make_client, make_database):
    url = await fresh_database(make_database)
    conn = await asyncpg.connect(url)
    try:
        owner = await insert_user(conn)
        await add_podcast(conn, owner, "Deep Sessions", "Weekly deep house mixes", minutes=1)
        await add_podcast(
            conn,
            owner,
            "Techno Talk",
            "Interviews",
            category="Arts",
            language="fr-fr",
            minutes=2,
            paid=True,
        )
        await add_podcast(conn, owner, "Café Stories", "Stories about DJs", author="Zoé", minutes=3)
        await add_podcast(conn, owner, "Deep Gone", "deleted", deleted=True, minutes=4)
    finally:
        await conn.close()
    node = await make_client(database_url=url, public_url=PUBLIC_URL)
    everything = await names(node, PODCASTS, "podcasts")
    assert everything == ["Café Stories", "Techno Talk", "Deep Sessions"]
    assert await names(node, PODCASTS, "podcasts", q="deep") == ["Deep Sessions"]
    assert await names(node, PODCASTS, "podcasts", q="cafe") == ["Café Stories"]
    assert await names(node, PODCASTS, "podcasts", q="zoe") == ["Café Stories"]  # the author
    assert await names(node, PODCASTS, "podcasts", category="arts") == ["Techno Talk"]
    assert await names(node, PODCASTS, "podcasts", language="fr-fr") == ["Techno Talk"]
    assert await names(node, PODCASTS, "podcasts", q="interv", language="en-us") == []
    body = await (await node.get(PODCASTS, params={"q": "techno"})).json()
    (entry,) = body["podcasts"]
    assert entry["monetization_enabled"] is True and entry["episode_count"] == 0
    assert entry["rss_feed_url"].endswith(f"/v1/podcasts/{entry['podcast_id']}/rss.xml")
    bad = await node.get(PODCASTS, params={"language": "French"})
    assert bad.status == 400 and "language" in (await bad.json())["error"]
