"""US-4.1 – US-4.5 and US-11.2 through the HTTP API: podcasts and episodes as a DJ creates,
lists, changes and deletes them, with the backlog's status codes and bodies."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.accounts import user_headers
from tests.podcasts import (
    PODCASTS,
    PUBLIC_URL,
    add_episode,
    create_podcast,
    external_episode,
    new_id,
    podcast_body,
    start_audio_host,
    start_pod_node,
)


@pytest.fixture
async def node(make_client, make_settings, test_secrets):
    return await start_pod_node(make_client, make_settings, test_secrets)


@pytest.fixture
async def host(aiohttp_server):
    return await start_audio_host(aiohttp_server)


async def test_create_podcast_returns_its_feed_url(node):
    _, dj = await user_headers(node.client, "dj")
    response = await node.client.post(PODCASTS, json=podcast_body(), headers=dj)
    assert response.status == 201
    body = await response.json()
    assert set(body) == {"podcast_id", "rss_feed_url"}
    assert body["rss_feed_url"] == f"{PUBLIC_URL}/v1/podcasts/{body['podcast_id']}/rss.xml"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"language": "EN-US"}, "Field 'language' must be a language code such as en-us"),
        ({"language": "english"}, "Field 'language' must be a language code such as en-us"),
        ({"image_url": "ftp://cdn.example.com/a.jpg"}, "Field 'image_url' must be an http or"),
        ({"image_url": "not a url"}, "Field 'image_url' must not contain spaces."),
        ({"title": ""}, "Field 'title' must not be empty."),
        ({"title": "bell\x07"}, "Field 'title' must not contain control characters."),
        ({"description": ""}, "Field 'description' must not be empty."),
        ({"description": " \n\t "}, "Field 'description' must not be empty."),
        ({"explicit": "no"}, "Field 'explicit' must be true or false."),
        ({"category": "Cooking"}, "Field 'category' must be"),
        ({"custom_domain": "not a domain"}, "Field 'custom_domain' must be a domain name"),
    ],
)
async def test_invalid_podcasts_are_400_with_a_message(node, changes, message):
    _, dj = await user_headers(node.client, "dj")
    response = await node.client.post(PODCASTS, json=podcast_body(**changes), headers=dj)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == 400 and body["error"].startswith(message), body


async def test_missing_fields_are_400(node):
    _, dj = await user_headers(node.client, "dj")
    body = podcast_body()
    del body["author"]
    response = await node.client.post(PODCASTS, json=body, headers=dj)
    assert response.status == 400
    assert (await response.json())["error"] == "Field 'author' is required."


async def test_create_needs_a_token_with_podcasts_write(node):
    response = await node.client.post(PODCASTS, json=podcast_body())
    assert response.status == 401
    _, listener = await user_headers(node.client, "listener")
    response = await node.client.post(PODCASTS, json=podcast_body(), headers=listener)
    assert response.status == 403
    assert (await response.json())["error"] == "Your token lacks the 'podcasts:write' scope"


async def test_new_podcast_shows_the_no_episodes_message(node):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    response = await node.client.get(f"{PODCASTS}/{podcast_id}")  # public, anonymous
    assert response.status == 200
    body = await response.json()
    assert body["episodes"] == []
    assert body["message"] == (
        f"No episodes yet. Add your first episode via POST /v1/podcasts/{podcast_id}/episodes."
    )
    assert {k: body[k] for k in podcast_body()} == podcast_body()
    assert body["rss_feed_url"] == f"{PUBLIC_URL}/v1/podcasts/{podcast_id}/rss.xml"
    assert body["category"] == "Music" and body["podcast_type"] == "episodic"
    assert body["owner_name"] == "DJ Example"


async def test_episodes_are_listed_newest_first_and_message_is_null(node, host):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    dates = ["2025-06-10T14:00:00Z", "2025-06-24T14:00:00+00:00", "2025-06-17T16:00:00+02:00"]
    ids = [
        await add_episode(
            node.client,
            dj,
            podcast_id,
            external_episode(host.url(), n + 1, publication_date=date),
        )
        for n, date in enumerate(dates)
    ]
    body = await (await node.client.get(f"{PODCASTS}/{podcast_id}")).json()
    assert body["message"] is None
    assert [e["episode_id"] for e in body["episodes"]] == [ids[1], ids[2], ids[0]]
    first = body["episodes"][2]
    assert first == {
        "episode_id": ids[0],
        "source_type": "external",
        "upload_id": None,
        "media_url": host.url(),
        "media_size_bytes": len(host.audio),
        "title": "Episode 1: Live from Ibiza",
        "description": "Exclusive set and interview.",
        "duration_seconds": 3,
        "publication_date": "2025-06-10T14:00:00Z",
        "published": True,
        "episode_number": 1,
        "season": None,
        "episode_type": "full",
        "explicit": False,
        "monetization_required": False,
    }


async def test_unknown_podcasts_are_404(node):
    for podcast_id in (new_id(), "nope"):
        response = await node.client.get(f"{PODCASTS}/{podcast_id}")
        assert response.status == 404
        assert await response.json() == {"error": "Podcast not found", "code": 404}


async def test_list_mine(node):
    _, dj = await user_headers(node.client, "dj")
    _, other = await user_headers(node.client, "dj")
    first = await create_podcast(node.client, dj, title="First")
    node.advance(seconds=1)
    second = await create_podcast(node.client, dj, title="Second")
    await create_podcast(node.client, other)
    response = await node.client.get(PODCASTS, headers=dj)
    assert response.status == 200
    body = await response.json()
    assert [p["podcast_id"] for p in body["podcasts"]] == [second, first]
    assert (body["page"], body["per_page"], body["total"]) == (1, 20, 2)
    assert (await node.client.get(PODCASTS)).status == 401


async def test_patch_podcast_reports_updated_fields(node):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    url = f"{PODCASTS}/{podcast_id}"
    changes = {"title": "Renamed", "podcast_type": "serial", "explicit": True}
    response = await node.client.patch(url, json=changes, headers=dj)
    assert response.status == 200
    assert await response.json() == {
        "podcast_id": podcast_id,
        "updated_fields": ["title", "podcast_type", "explicit"],
    }
    body = await (await node.client.get(url)).json()
    assert {k: body[k] for k in changes} == changes
    for bad, status in (({}, 400), ({"title": None}, 400), ({"language": "xx"}, 400)):
        assert (await node.client.patch(url, json=bad, headers=dj)).status == status
    response = await node.client.patch(url, json={"description": "   "}, headers=dj)
    assert response.status == 400
    assert (await response.json())["error"] == "Field 'description' must not be empty."


async def test_only_the_owner_or_an_admin_changes_a_podcast(node):
    _, dj = await user_headers(node.client, "dj")
    _, other = await user_headers(node.client, "dj")
    _, admin = await user_headers(node.client, "admin")
    podcast_id = await create_podcast(node.client, dj)
    url = f"{PODCASTS}/{podcast_id}"
    response = await node.client.patch(url, json={"title": "Mine now"}, headers=other)
    assert response.status == 403
    assert (await response.json())["error"] == "Only the podcast's owner or an admin can do this"
    assert (await node.client.delete(url, headers=other)).status == 403
    assert (await node.client.patch(url, json={"title": "Ok"}, headers=admin)).status == 200
    assert (await node.client.delete(url, headers=admin)).status == 204
    assert (await node.client.get(url)).status == 404
    assert (await node.client.delete(url, headers=dj)).status == 404


async def test_duplicate_episode_number_is_409(node, host):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    first = await add_episode(node.client, dj, podcast_id, external_episode(host.url(), 1))
    response = await node.client.post(
        f"{PODCASTS}/{podcast_id}/episodes", json=external_episode(host.url(), 1), headers=dj
    )
    assert response.status == 409
    message = "Episode number 1 already exists in this podcast"
    assert await response.json() == {"error": message, "code": 409}
    # Another podcast may use the same number; a deleted episode frees its number.
    other = await create_podcast(node.client, dj)
    await add_episode(node.client, dj, other, external_episode(host.url(), 1))
    second = await add_episode(node.client, dj, podcast_id, external_episode(host.url(), 2))
    url = f"{PODCASTS}/{podcast_id}/episodes/{second}"
    response = await node.client.patch(url, json={"episode_number": 1}, headers=dj)
    assert response.status == 409
    await node.client.delete(f"{PODCASTS}/{podcast_id}/episodes/{first}", headers=dj)
    assert (await node.client.patch(url, json={"episode_number": 1}, headers=dj)).status == 200


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"publication_date": "next tuesday"}, "Field 'publication_date' must be an ISO 8601"),
        ({"episode_number": 0}, "Field 'episode_number' must be at least 1."),
        ({"episode_number": "1"}, "Field 'episode_number' must be an integer."),
        ({"media_url": None}, "Field 'media_url' is required and 'upload_id' must be null"),
        ({"upload_id": new_id()}, "Field 'media_url' is required and 'upload_id' must be null"),
        ({"source_type": "ftp"}, "Field 'source_type' must be 'upload' or 'external'."),
        ({"source_type": "upload"}, "Field 'upload_id' is required and 'media_url' must be"),
        ({"media_url": "file:///etc/passwd"}, "Field 'media_url' must be an http or https URL."),
        ({"media_url": "http://u:p@x.example/a.mp3"}, "Field 'media_url' must not contain"),
    ],
)
async def test_invalid_episodes_are_400(node, host, changes, message):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    body = {**external_episode(host.url()), **changes}
    response = await node.client.post(f"{PODCASTS}/{podcast_id}/episodes", json=body, headers=dj)
    assert response.status == 400
    assert (await response.json())["error"].startswith(message)


async def test_episode_routes_check_podcast_and_owner(node, host):
    _, dj = await user_headers(node.client, "dj")
    _, other = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    body = external_episode(host.url())
    response = await node.client.post(f"{PODCASTS}/{new_id()}/episodes", json=body, headers=dj)
    assert response.status == 404
    url = f"{PODCASTS}/{podcast_id}/episodes"
    assert (await node.client.post(url, json=body, headers=other)).status == 403
    assert (await node.client.post(url, json=body)).status == 401
    episode_id = await add_episode(node.client, dj, podcast_id, body)
    episode = f"{url}/{episode_id}"
    assert (await node.client.patch(episode, json={"title": "x"}, headers=other)).status == 403
    assert (await node.client.delete(episode, headers=other)).status == 403
    assert (
        await node.client.patch(f"{url}/{new_id()}", json={"title": "x"}, headers=dj)
    ).status == 404
    assert (await node.client.delete(f"{url}/{new_id()}", headers=dj)).status == 404


async def test_patch_episode_reports_updated_fields_and_checks_new_media(node, host):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    episode_id = await add_episode(node.client, dj, podcast_id, external_episode(host.url()))
    url = f"{PODCASTS}/{podcast_id}/episodes/{episode_id}"
    changes = {"media_url": host.url("/chunked.mp3"), "monetization_required": True}
    response = await node.client.patch(url, json=changes, headers=dj)
    assert response.status == 200
    assert await response.json() == {
        "episode_id": episode_id,
        "updated_fields": ["media_url", "monetization_required"],
    }
    response = await node.client.patch(url, json={"media_url": host.url("/page.html")}, headers=dj)
    assert response.status == 422
    response = await node.client.patch(url, json={"source_type": "upload"}, headers=dj)
    assert response.status == 400
    assert (await response.json())["error"].startswith("Field 'upload_id' is required")
    page = await (await node.client.get(f"{PODCASTS}/{podcast_id}", headers=dj)).json()
    assert page["episodes"][0]["media_url"] == host.url("/chunked.mp3")
    assert page["episodes"][0]["monetization_required"] is True


async def test_delete_episode_is_204_then_404(node, host):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    episode_id = await add_episode(node.client, dj, podcast_id, external_episode(host.url()))
    url = f"{PODCASTS}/{podcast_id}/episodes/{episode_id}"
    response = await node.client.delete(url, headers=dj)
    assert response.status == 204 and await response.read() == b""
    assert (await node.client.delete(url, headers=dj)).status == 404
    page = await (await node.client.get(f"{PODCASTS}/{podcast_id}")).json()
    assert page["episodes"] == [] and page["message"] is not None


async def test_scheduled_episodes_are_listed_to_the_owner_only(node, host):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    later = (node.now + timedelta(days=2)).isoformat()
    await add_episode(node.client, dj, podcast_id, external_episode(host.url(), 1))
    scheduled = await add_episode(
        node.client, dj, podcast_id, external_episode(host.url(), 2, publication_date=later)
    )
    public = await (await node.client.get(f"{PODCASTS}/{podcast_id}")).json()
    assert scheduled not in [e["episode_id"] for e in public["episodes"]]
    owner = await (await node.client.get(f"{PODCASTS}/{podcast_id}", headers=dj)).json()
    assert owner["episodes"][0]["episode_id"] == scheduled
    assert owner["episodes"][0]["published"] is False
