"""US-4.3 for external media: the URL is checked with HEAD (200, audio/mpeg, its size) on a
real web server, redirects are followed, and with ALLOW_PRIVATE_MEDIA_URLS off the server
refuses to fetch loopback or private addresses at all (no SSRF)."""

from __future__ import annotations

import pytest

from control.urlguard import UrlGuard, UrlRefused
from tests.accounts import user_headers
from tests.podcasts import (
    NS,
    PODCASTS,
    TAG_BYTES,
    add_episode,
    create_podcast,
    external_episode,
    get_feed,
    items,
    start_audio_host,
    start_pod_node,
)


@pytest.fixture
async def host(aiohttp_server):
    return await start_audio_host(aiohttp_server)


async def post_episode(node, media_url):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    response = await node.client.post(
        f"{PODCASTS}/{podcast_id}/episodes", json=external_episode(media_url), headers=dj
    )
    return response, podcast_id


@pytest.fixture
async def node(make_client, make_settings, test_secrets):
    return await start_pod_node(make_client, make_settings, test_secrets)


@pytest.mark.parametrize("path", ["/episode.mp3", "/chunked.mp3", "/moved.mp3"])
async def test_the_size_comes_from_content_length_or_content_range(node, host, path):
    response, podcast_id = await post_episode(node, host.url(path))
    assert response.status == 201, await response.text()
    [item] = items(await get_feed(node.client, podcast_id))
    enclosure = item.find("enclosure")
    assert enclosure is not None
    assert enclosure.get("length") == str(len(host.audio))
    assert enclosure.get("url") == host.url(path)  # the episode encloses its own URL
    assert host.requests[0][:2] == ("HEAD", path)
    if path == "/chunked.mp3":  # no Content-Length: the total of a byte range tells
        assert host.requests[1] == ("GET", path, "bytes=0-65535")
    else:  # the duration is given: nothing more to fetch
        assert len(host.requests) == 1 + (path == "/moved.mp3")


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/page.html", 422, "The media URL serves text/html; charset=utf-8; episodes must be"),
        ("/missing.mp3", 422, "The media URL answered HEAD with HTTP 404; it must answer 200"),
        ("/unsized.mp3", 422, "The media URL does not tell its size"),
    ],
)
async def test_unusable_media_is_refused(node, host, path, status, message):
    response, _ = await post_episode(node, host.url(path))
    assert response.status == status
    assert (await response.json())["error"].startswith(message)


@pytest.mark.parametrize("path", ["/episode.mp3", "/chunked.mp3", "/tagged.mp3", "/moved.mp3"])
async def test_the_duration_is_estimated_when_not_given(node, host, path):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    body = external_episode(host.url(path), duration_seconds=None)
    episode_id = await add_episode(node.client, dj, podcast_id, body)
    [item] = items(await get_feed(node.client, podcast_id))
    assert item.findtext("itunes:duration", namespaces=NS) == "00:00:03"
    page = await (await node.client.get(f"{PODCASTS}/{podcast_id}")).json()
    assert page["episodes"][0]["duration_seconds"] == 3
    gets = [r for r in host.requests if r[0] == "GET" and r[1] == path]
    assert gets[0][2] == "bytes=0-65535"  # the first 64 KiB, not the whole file
    if path == "/tagged.mp3":  # cover art fills the first 64 KiB: looked past it
        assert gets[1][2] == f"bytes={TAG_BYTES + 10}-{TAG_BYTES + 10 + 65535}"
    # A stated duration wins; so does a changed one. New media gets a new estimate.
    url = f"{PODCASTS}/{podcast_id}/episodes/{episode_id}"
    response = await node.client.patch(url, json={"duration_seconds": 60}, headers=dj)
    assert response.status == 200
    [item] = items(await get_feed(node.client, podcast_id))
    assert item.findtext("itunes:duration", namespaces=NS) == "00:01:00"
    longer = host.url("/long.mp3")
    response = await node.client.patch(url, json={"media_url": longer}, headers=dj)
    assert response.status == 200, await response.text()
    [item] = items(await get_feed(node.client, podcast_id))
    assert item.findtext("itunes:duration", namespaces=NS) == "00:00:07"


async def test_no_estimate_without_audio_frames(node, host):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    body = external_episode(host.url("/noise.mp3"), duration_seconds=None)
    await add_episode(node.client, dj, podcast_id, body)
    [item] = items(await get_feed(node.client, podcast_id))
    assert item.find("itunes:duration", NS) is None  # unknown, rather than wrong


async def test_unreachable_media_is_422(node, unused_tcp_port):
    response, _ = await post_episode(node, f"http://127.0.0.1:{unused_tcp_port}/a.mp3")
    assert response.status == 422
    assert (await response.json())["error"].startswith("The media URL could not be reached")


@pytest.mark.parametrize("where", ["127.0.0.1", "localhost", "[::1]", "127.1", "0x7f.1"])
async def test_private_addresses_are_refused_when_not_allowed(
    make_client, make_settings, test_secrets, host, where
):
    node = await start_pod_node(
        make_client, make_settings, test_secrets, allow_private_media_urls=False
    )
    url = host.url().replace("127.0.0.1", where)
    response, _ = await post_episode(node, url)
    assert response.status == 422
    error = (await response.json())["error"]
    assert "only public addresses can be used" in error or "cannot be resolved" in error
    assert host.requests == []  # never contacted


async def test_every_redirect_hop_is_checked(host):
    """A first hop that passes cannot bounce the server to an internal address."""

    class FirstHopTrusted(UrlGuard):
        async def check(self, url: str) -> None:
            if url != host.url("/moved.mp3"):
                await super().check(url)

    guard = FirstHopTrusted(allow_private=False)
    async with guard.session(5) as session:
        with pytest.raises(UrlRefused, match="only public addresses"):
            await guard.request(session, "HEAD", host.url("/moved.mp3"))
    assert host.requests == [("HEAD", "/moved.mp3", None)]  # the target was never fetched
