"""Episode media of upload-based episodes as podcast apps fetch it: the enclosure URL of the
feed, byte ranges (first byte, middle, suffix, open, unsatisfiable, several), HEAD,
validators, a real decoder playing it over HTTP, the paywall, download counts, and uploads
that episodes use."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from mediaserver.app import POOL
from tests.accounts import user_headers
from tests.audio import decode, make_mp3
from tests.podcasts import (
    PODCASTS,
    PUBLIC_URL,
    add_episode,
    create_podcast,
    get_feed,
    items,
    parse_xml,
    seek_and_decode,
    start_audio_host,
    start_pod_node,
    subscriber_of,
)
from tests.uploads import UPLOADS, ready_upload, upload_mp3, wait_processed

SECONDS = 4.0


@pytest.fixture
async def node(make_client, make_settings, test_secrets):
    return await start_pod_node(make_client, make_settings, test_secrets)


@pytest.fixture
def audio() -> bytes:
    return make_mp3(SECONDS, id3_title="Episode audio")


def upload_episode(upload_id: str, number: int = 1, **changes) -> dict:
    body = {
        "title": f"Episode {number}",
        "description": "From an upload.",
        "source_type": "upload",
        "upload_id": upload_id,
        "media_url": None,
        "publication_date": "2025-06-10T14:00:00Z",
        "episode_number": number,
    }
    body.update(changes)
    return body


async def upload_podcast(node, audio, **episode_changes):
    """A DJ's podcast with one episode made from a ready upload."""
    _, dj = await user_headers(node.client, "dj")
    upload = await ready_upload(node.client, dj, audio)
    podcast_id = await create_podcast(node.client, dj)
    body = upload_episode(upload["upload_id"], **episode_changes)
    episode_id = await add_episode(node.client, dj, podcast_id, body)
    path = f"{PODCASTS}/{podcast_id}/episodes/{episode_id}/media.mp3"
    return dj, upload, podcast_id, episode_id, path


async def test_upload_episode_is_enclosed_with_its_media_route(node, audio):
    _, upload, podcast_id, episode_id, path = await upload_podcast(node, audio)
    [item] = items(await get_feed(node.client, podcast_id))
    assert item.findtext("guid") == episode_id
    enclosure = item.find("enclosure")
    assert enclosure is not None
    assert enclosure.get("url") == PUBLIC_URL + path
    assert enclosure.get("length") == str(len(audio)) == str(upload["size_bytes"])
    assert item.findtext("{http://www.itunes.com/dtds/podcast-1.0.dtd}duration") == "00:00:04"


async def test_whole_file_and_head(node, audio):
    *_, path = await upload_podcast(node, audio)
    response = await node.client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert int(response.headers["Content-Length"]) == len(audio)
    assert await response.read() == audio
    head = await node.client.head(path)
    assert head.status == 200 and await head.read() == b""
    assert int(head.headers["Content-Length"]) == len(audio)
    assert head.headers["Accept-Ranges"] == "bytes"
    assert head.headers["ETag"] == response.headers["ETag"]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),  # Apple's probe
        ("bytes=0-1", 0, 1),
        ("bytes=1000-4999", 1000, 4999),
        ("bytes=-500", -500, None),
        ("bytes=100-", 100, None),
        ("bytes=5000-999999999", 5000, None),
    ],
)
async def test_single_ranges_are_206(node, audio, header, start, end):
    *_, path = await upload_podcast(node, audio)
    size = len(audio)
    response = await node.client.get(path, headers={"Range": header})
    assert response.status == 206
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # streamed, decorated too
    expected = audio[start : None if end is None else end + 1]
    first = size + start if start < 0 else start
    last = first + len(expected) - 1
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert int(response.headers["Content-Length"]) == len(expected)
    assert await response.read() == expected
    # RFC 9110 §14.2: GET is the one method with ranges; HEAD describes the whole file.
    head = await node.client.head(path, headers={"Range": header})
    assert head.status == 200 and "Content-Range" not in head.headers
    assert int(head.headers["Content-Length"]) == size


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=-0"])
async def test_unsatisfiable_ranges_are_416(node, audio, header):
    *_, path = await upload_podcast(node, audio)
    response = await node.client.get(path, headers={"Range": header})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(audio)}"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await response.json() == {
        "error": f"Range not satisfiable: the media is {len(audio)} bytes long",
        "code": 416,
    }
    head = await node.client.head(path, headers={"Range": header})
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(audio)


@pytest.mark.parametrize(
    "headers",
    [
        {"Range": "bytes=0-1,100-200"},  # several ranges: the whole file
        {"Range": "bytes=20-10"},  # invalid: ignored
        {"Range": "items=0-1"},  # another unit: ignored
        {"Range": "bytes=0-1", "If-Range": '"changed"'},
        {"Range": "bytes=0-1", "If-Range": "Mon, 01 Jan 2024 00:00:00 GMT"},
    ],
)
async def test_ignored_ranges_get_the_whole_file(node, audio, headers):
    *_, path = await upload_podcast(node, audio)
    response = await node.client.get(path, headers=headers)
    assert response.status == 200
    assert "Content-Range" not in response.headers
    assert await response.read() == audio


async def test_validators(node, audio):
    *_, path = await upload_podcast(node, audio)
    first = await node.client.get(path)
    etag = first.headers["ETag"]
    response = await node.client.get(path, headers={"If-Range": etag, "Range": "bytes=0-9"})
    assert response.status == 206 and await response.read() == audio[:10]
    response = await node.client.get(path, headers={"If-None-Match": etag})
    assert response.status == 304


async def test_a_real_decoder_plays_the_enclosure_over_http(node, audio):
    *_, path = await upload_podcast(node, audio)
    url = str(node.client.make_url(path))
    decoded = await asyncio.to_thread(decode, url)
    assert decoded.codec.startswith("mp3")
    assert decoded.duration == pytest.approx(SECONDS, abs=0.1)
    # Seeking makes libavformat reopen the URL with a byte range.
    assert await asyncio.to_thread(seek_and_decode, url, 2.5) == pytest.approx(2.5, abs=0.1)


async def test_downloads_are_counted(node, audio):
    *_, episode_id, path = await upload_podcast(node, audio)
    await node.client.get(path, headers={"Range": "bytes=0-1"})  # a probe does not count
    await node.client.head(path)
    await node.client.get(path)
    await node.client.get(path, headers={"Range": "bytes=100-"})  # a resumed download
    value = await node.client.app[POOL].fetchval(
        "SELECT value FROM analytics WHERE resource_type = 'episode' AND resource_id = $1 "
        "AND metric = 'downloads'",
        uuid.UUID(episode_id),
    )
    assert value == 1


async def test_paywalled_episode_media(node, audio):
    dj, _, _, _, path = await upload_podcast(node, audio, monetization_required=True)
    _, listener = await user_headers(node.client, "listener")
    for headers in ({}, listener):  # anonymous or not: the answer of streams (US-6.3)
        response = await node.client.get(path, headers=headers)
        assert response.status == 403
        assert (await response.json())["error"] == "Subscription required"
    subscriber = await subscriber_of(node.client, dj)
    response = await node.client.get(path, headers={**subscriber, "Range": "bytes=0-9"})
    assert response.status == 206 and await response.read() == audio[:10]


async def cache_headers(node, path: str, headers: dict[str, str]) -> list[tuple]:
    """(status, Cache-Control, Vary) of a whole GET, a ranged GET and a revalidation."""
    seen = []
    whole = await node.client.get(path, headers=headers)
    ranged = await node.client.get(path, headers={**headers, "Range": "bytes=0-99"})
    etag = whole.headers["ETag"]
    again = await node.client.get(path, headers={**headers, "If-None-Match": etag})
    for response in (whole, ranged, again):
        await response.read()
        seen.append(
            (response.status, response.headers["Cache-Control"], response.headers.get("Vary"))
        )
    return seen


async def test_only_free_audio_is_publicly_cacheable(node, audio):
    """A CDN in front of the server may keep free audio for everyone, never paid audio
    (asked for with a token or through a private feed URL), nor an owner's preview."""
    dj, upload, podcast_id, _, free_path = await upload_podcast(node, audio)
    public = "public, max-age=86400"
    assert await cache_headers(node, free_path, {}) == [
        (200, public, None), (206, public, None), (304, public, None)
    ]  # fmt: skip
    paid = await add_episode(
        node.client,
        dj,
        podcast_id,
        upload_episode(upload["upload_id"], 2, monetization_required=True),
    )
    paid_path = f"{PODCASTS}/{podcast_id}/episodes/{paid}/media.mp3"
    subscriber = await subscriber_of(node.client, dj)
    private = ("private, max-age=86400", "Authorization")
    assert await cache_headers(node, paid_path, subscriber) == [
        (200, *private), (206, *private), (304, *private)
    ]  # fmt: skip
    response = await node.client.get(f"{PODCASTS}/{podcast_id}/feed-url", headers=subscriber)
    grant = (await response.json())["feed_url"].split("?grant=")[1]
    granted = ("private, no-store", "Authorization")
    assert await cache_headers(node, f"{paid_path}?grant={grant}", {}) == [
        (200, *granted), (206, *granted), (304, *granted)
    ]  # fmt: skip
    # The owner previewing an episode scheduled for later: private too, until it is out.
    when = (node.now + timedelta(hours=1)).isoformat()
    later = await add_episode(
        node.client, dj, podcast_id, upload_episode(upload["upload_id"], 3, publication_date=when)
    )
    later_path = f"{PODCASTS}/{podcast_id}/episodes/{later}/media.mp3"
    assert [h[1] for h in await cache_headers(node, later_path, dj)] == [private[0]] * 3
    node.advance(hours=1)
    assert [h[1] for h in await cache_headers(node, later_path, {})] == [public] * 3


async def test_scheduled_episode_media_is_404_until_published(node, audio):
    when = (node.now + timedelta(hours=1)).isoformat()
    dj, _, _, _, path = await upload_podcast(node, audio, publication_date=when)
    assert (await node.client.get(path)).status == 404
    assert (await node.client.get(path, headers=dj)).status == 200  # the owner previews
    node.advance(hours=1)
    assert (await node.client.get(path)).status == 200


async def test_unknown_media_is_404(node, audio):
    _, _, podcast_id, episode_id, _ = await upload_podcast(node, audio)
    for path in (
        f"{PODCASTS}/{podcast_id}/episodes/{uuid.uuid4()}/media.mp3",
        f"{PODCASTS}/{uuid.uuid4()}/episodes/{episode_id}/media.mp3",
        f"{PODCASTS}/{podcast_id}/episodes/nope/media.mp3",
    ):
        assert (await node.client.get(path)).status == 404


async def test_upload_episodes_need_a_ready_upload_of_the_owner(node, audio):
    _, dj = await user_headers(node.client, "dj")
    _, other = await user_headers(node.client, "dj")
    theirs = await ready_upload(node.client, other, audio)
    podcast_id = await create_podcast(node.client, dj)
    url = f"{PODCASTS}/{podcast_id}/episodes"
    for upload_id in (theirs["upload_id"], str(uuid.uuid4())):
        response = await node.client.post(url, json=upload_episode(upload_id), headers=dj)
        assert response.status == 422
        assert "does not name one of your uploads" in (await response.json())["error"]


async def test_an_upload_used_by_an_episode_is_not_deleted_by_accident(node, audio):
    dj, upload, _, _, path = await upload_podcast(node, audio)
    url = f"{UPLOADS}/{upload['upload_id']}"
    response = await node.client.delete(url, headers=dj)
    assert response.status == 409
    details = (await response.json())["details"]
    assert details == ["The upload is used by episode 'Episode 1' of podcast 'Tech DJ Podcast'"]
    assert (await node.client.delete(f"{url}?force=true", headers=dj)).status == 204
    response = await node.client.get(path)
    assert response.status == 404  # the episode went with its upload
    assert (await response.json())["error"] == "Episode not found"


async def test_a_forced_upload_delete_takes_its_episodes_out_of_the_feeds(node, audio):
    dj, upload, podcast_id, episode_id, path = await upload_podcast(node, audio)
    kept = await ready_upload(node.client, dj, make_mp3(2.0))
    kept_id = await add_episode(
        node.client, dj, podcast_id, upload_episode(kept["upload_id"], number=2)
    )
    second_podcast = await create_podcast(node.client, dj, title="Second Show")
    await add_episode(node.client, dj, second_podcast, upload_episode(upload["upload_id"]))
    feed_url = f"{PODCASTS}/{podcast_id}/rss.xml"
    before = await node.client.get(feed_url)
    assert before.status == 200
    assert {i.findtext("guid") for i in items(await get_feed(node.client, podcast_id))} == {
        episode_id,
        kept_id,
    }  # the feeds are cached now
    assert len(items(await get_feed(node.client, second_podcast))) == 1
    node.advance(minutes=1)

    url = f"{UPLOADS}/{upload['upload_id']}?force=true"
    assert (await node.client.delete(url, headers=dj)).status == 204

    # At once, not after the cache's 300 s: the episode is gone, the feed is a new one.
    after = await node.client.get(feed_url, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status == 200
    [item] = items(parse_xml(await after.read()))
    assert item.findtext("guid") == kept_id
    assert items(await get_feed(node.client, second_podcast)) == []
    shown = await (await node.client.get(f"{PODCASTS}/{podcast_id}", headers=dj)).json()
    assert [e["episode_id"] for e in shown["episodes"]] == [kept_id]
    response = await node.client.get(path)
    assert response.status == 404
    # The episode number is free again for an episode on new media.
    again = await ready_upload(node.client, dj, audio)
    await add_episode(node.client, dj, podcast_id, upload_episode(again["upload_id"]))


async def test_switching_an_episode_from_external_to_upload(node, audio, aiohttp_server):
    host = await start_audio_host(aiohttp_server)
    _, dj = await user_headers(node.client, "dj")
    upload = await ready_upload(node.client, dj, audio)
    podcast_id = await create_podcast(node.client, dj)
    body = upload_episode(upload["upload_id"])
    body.update(source_type="external", upload_id=None, media_url=host.url())
    episode_id = await add_episode(node.client, dj, podcast_id, body)
    path = f"{PODCASTS}/{podcast_id}/episodes/{episode_id}/media.mp3"
    response = await node.client.get(path, allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == host.url()
    change = {"source_type": "upload", "upload_id": upload["upload_id"]}
    response = await node.client.patch(
        f"{PODCASTS}/{podcast_id}/episodes/{episode_id}", json=change, headers=dj
    )
    assert response.status == 200
    [item] = items(await get_feed(node.client, podcast_id))
    enclosure = item.find("enclosure")
    assert enclosure is not None and enclosure.get("url") == PUBLIC_URL + path
    assert enclosure.get("length") == str(len(audio))
    assert item.findtext("{http://www.itunes.com/dtds/podcast-1.0.dtd}duration") == "00:00:04"
    assert await (await node.client.get(path)).read() == audio


async def test_uploads_still_processing_or_failed_are_422(
    make_client, make_settings, test_secrets, audio
):
    node = await start_pod_node(make_client, make_settings, test_secrets, job_workers=0)
    _, dj = await user_headers(node.client, "dj")
    processing = await upload_mp3(node.client, dj, audio)  # no worker: stays `processing`
    podcast_id = await create_podcast(node.client, dj)
    url = f"{PODCASTS}/{podcast_id}/episodes"
    response = await node.client.post(url, json=upload_episode(processing["upload_id"]), headers=dj)
    assert response.status == 422
    assert await response.json() == {
        "error": f"Upload {processing['upload_id']} is not ready (status processing)",
        "code": 422,
    }
    page = await (await node.client.get(f"{PODCASTS}/{podcast_id}")).json()
    assert page["episodes"] == []


async def test_a_failed_upload_is_422(node, audio):
    _, dj = await user_headers(node.client, "dj")
    whole = make_mp3(20.0)
    failed = await upload_mp3(node.client, dj, whole[: len(whole) // 2], filename="cut.mp3")
    assert (await wait_processed(node.client, dj, failed["upload_id"]))["status"] == "failed"
    podcast_id = await create_podcast(node.client, dj)
    response = await node.client.post(
        f"{PODCASTS}/{podcast_id}/episodes", json=upload_episode(failed["upload_id"]), headers=dj
    )
    assert response.status == 422
    assert (await response.json())["error"] == (
        f"Upload {failed['upload_id']} is not ready (status failed)"
    )
