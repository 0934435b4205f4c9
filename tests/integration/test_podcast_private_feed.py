"""Private feed URLs, as a subscriber uses them: `GET /v1/podcasts/{id}/feed-url` hands out
a `rss.xml?grant=…` URL that a podcast app (feedparser here) reads without any header; its
enclosures carry the grant, so a real decoder (PyAV) plays and seeks them; the URL stops
working once the subscription is cancelled, and never opens another podcast. Paywalled
external episodes are enclosed through this server's media route, never by their raw URL."""

from __future__ import annotations

import asyncio
import uuid

import feedparser
import pytest

from tests.accounts import sign_out_everywhere, user_headers
from tests.audio import decode, make_mp3
from tests.podcasts import (
    NS,
    PODCASTS,
    PUBLIC_URL,
    add_episode,
    create_podcast,
    external_episode,
    get_feed,
    items,
    parse_xml,
    seek_and_decode,
    start_audio_host,
    start_pod_node_with_cache,
    subscriber_of,
)
from tests.uploads import ready_upload

SECONDS = 4.0


@pytest.fixture(params=["memory", "redis"])
async def node(request, make_client, make_settings, test_secrets):
    return await start_pod_node_with_cache(request, make_client, make_settings, test_secrets)


@pytest.fixture
async def host(aiohttp_server):
    return await start_audio_host(aiohttp_server)


def on_loopback(node, url: str) -> str:
    """`url` (under MEDIASERVER_PUBLIC_URL) as the test server answers it."""
    assert url.startswith(PUBLIC_URL), url
    return str(node.client.make_url(url.removeprefix(PUBLIC_URL)))


def path_of(url: str) -> str:
    return url.removeprefix(PUBLIC_URL)


async def premium_podcast(node, host, audio: bytes):
    """A monetized podcast with an upload episode and an external one."""
    _, dj = await user_headers(node.client, "dj")
    upload = await ready_upload(node.client, dj, audio)
    podcast_id = await create_podcast(node.client, dj, monetization_enabled=True)
    body = {"title": "From an upload", "source_type": "upload", "episode_number": 1}
    upload_episode = await add_episode(
        node.client, dj, podcast_id, {**body, "upload_id": upload["upload_id"]}
    )
    external = await add_episode(node.client, dj, podcast_id, external_episode(host.url(), 2))
    return dj, podcast_id, upload_episode, external


async def private_url(node, headers, podcast_id) -> dict:
    response = await node.client.get(f"{PODCASTS}/{podcast_id}/feed-url", headers=headers)
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def test_a_podcast_app_reads_and_plays_the_private_feed(node, host):
    audio = make_mp3(SECONDS)
    dj, podcast_id, upload_episode, external = await premium_podcast(node, host, audio)
    subscriber = await subscriber_of(node.client, dj)
    private = await private_url(node, subscriber, podcast_id)
    assert private["feed_url"].startswith(f"{PUBLIC_URL}{PODCASTS}/{podcast_id}/rss.xml?grant=")
    assert private["custom_feed_url"] is None
    grant = private["feed_url"].split("?grant=", 1)[1]
    # The plain URL is refused to an app without a token; the private one is not.
    assert (await node.client.get(f"{PODCASTS}/{podcast_id}/rss.xml")).status == 403
    parsed = await asyncio.to_thread(feedparser.parse, on_loopback(node, private["feed_url"]))
    assert parsed.status == 200 and not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title == "Tech DJ Podcast"
    enclosures = {e.id: e.enclosures[0] for e in parsed.entries}
    assert set(enclosures) == {upload_episode, external}
    for episode_id, enclosure in enclosures.items():
        path = f"{PODCASTS}/{podcast_id}/episodes/{episode_id}/media.mp3"
        assert enclosure.href == f"{PUBLIC_URL}{path}?grant={grant}"
    assert int(enclosures[upload_episode].length) == len(audio)
    # A real decoder plays the granted enclosure and seeks in it (ranged re-opens).
    media = on_loopback(node, enclosures[upload_episode].href)
    decoded = await asyncio.to_thread(decode, media)
    assert decoded.duration == pytest.approx(SECONDS, abs=0.1)
    assert await asyncio.to_thread(seek_and_decode, media, 2.5) == pytest.approx(2.5, abs=0.1)
    response = await node.client.get(path_of(enclosures[upload_episode].href))
    assert response.status == 200 and await response.read() == audio
    # The external episode's enclosure checks the grant, then sends the app on.
    response = await node.client.get(path_of(enclosures[external].href), allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == host.url()
    assert (
        await node.client.get(path_of(enclosures[upload_episode].href).split("?")[0])
    ).status == 403


async def test_the_private_feed_is_cached_and_polled_cheaply(node, host):
    dj, podcast_id, *_ = await premium_podcast(node, host, make_mp3(1.0))
    subscriber = await subscriber_of(node.client, dj)
    url = path_of((await private_url(node, subscriber, podcast_id))["feed_url"])
    assert (await private_url(node, subscriber, podcast_id))["feed_url"].endswith(url)  # stable
    first = await node.client.get(url)
    assert first.status == 200
    assert first.headers["Cache-Control"] == "private, no-cache"
    plain = await node.client.get(f"{PODCASTS}/{podcast_id}/rss.xml", headers=subscriber)
    assert plain.headers["ETag"] != first.headers["ETag"]  # another body: its own validator
    again = await node.client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""
    root = parse_xml(await first.read())
    link = root.find("channel/atom:link", NS)
    assert link is not None and link.get("href") == PUBLIC_URL + url


async def test_a_cancelled_subscription_closes_the_private_feed(node, host):
    dj, podcast_id, upload_episode, _ = await premium_podcast(node, host, make_mp3(1.0))
    subscriber = await subscriber_of(node.client, dj)
    private = await private_url(node, subscriber, podcast_id)
    feed = path_of(private["feed_url"])
    [enclosure] = [
        e.get("url")
        for e in parse_xml(await (await node.client.get(feed)).read()).iterfind(
            "channel/item/enclosure"
        )
        if upload_episode in (e.get("url") or "")
    ]
    assert (await node.client.get(path_of(enclosure))).status == 200
    subscriptions = await (
        await node.client.get("/v1/monetization/subscriptions", headers=subscriber)
    ).json()
    [subscription] = subscriptions["subscriptions"]
    cancelled = await node.client.delete(
        f"/v1/monetization/subscriptions/{subscription['subscription_id']}", headers=subscriber
    )
    assert cancelled.status == 200
    for url in (feed, path_of(enclosure)):
        response = await node.client.get(url)
        assert response.status == 403, url
        assert (await response.json())["error"] == "Subscription required"


async def test_who_gets_a_private_url_and_what_it_opens(node, host):
    dj, podcast_id, *_ = await premium_podcast(node, host, make_mp3(1.0))
    url = f"{PODCASTS}/{podcast_id}/feed-url"
    assert (await node.client.get(url)).status == 401
    _, listener = await user_headers(node.client, "listener")
    response = await node.client.get(url, headers=listener)
    assert response.status == 403
    assert (await response.json())["error"] == "Subscription required"
    assert (await node.client.get(f"{PODCASTS}/{uuid.uuid4()}/feed-url", headers=dj)).status == 404
    owner = await private_url(node, dj, podcast_id)  # the owner previews it in an app
    assert (await node.client.get(path_of(owner["feed_url"]))).status == 200
    # A free podcast: anyone signed in may have one; it opens nothing else.
    free = await create_podcast(node.client, dj)
    grant = (await private_url(node, listener, free))["feed_url"].split("?grant=")[1]
    assert (await node.client.get(f"{PODCASTS}/{free}/rss.xml?grant={grant}")).status == 200
    for forged in (
        f"{PODCASTS}/{podcast_id}/rss.xml?grant={grant}",  # another podcast
        f"{PODCASTS}/{free}/rss.xml?grant={grant[:-1]}{'1' if grant[-1] == '0' else '0'}",
        f"{PODCASTS}/{free}/rss.xml?grant={uuid.uuid4().hex}{grant[32:]}",  # another user
        f"{PODCASTS}/{free}/rss.xml?grant=nonsense",
    ):
        response = await node.client.get(forged)
        assert response.status == 403, forged
        assert "get a new one from GET" in (await response.json())["error"]


def grant_of(private: dict) -> str:
    return str(private["feed_url"].split("?grant=", 1)[1])


async def test_private_urls_expire(node, host):
    dj, paid, upload_episode, _ = await premium_podcast(node, host, make_mp3(1.0))
    free = await create_podcast(node.client, dj)
    free_episode = await add_episode(node.client, dj, free, external_episode(host.url(), 1))
    paid_grant = grant_of(await private_url(node, dj, paid))  # the owner's: no subscription
    free_grant = grant_of(await private_url(node, dj, free))
    paid_feed = f"{PODCASTS}/{paid}/rss.xml?grant={paid_grant}"
    paid_media = f"{PODCASTS}/{paid}/episodes/{upload_episode}/media.mp3?grant={paid_grant}"
    node.advance(days=365)
    assert (await node.client.get(paid_feed)).status == 200
    node.advance(days=2)
    for url in (paid_feed, paid_media):
        response = await node.client.get(url)
        assert response.status == 403, url
        assert await response.json() == {
            "error": "This private feed URL has expired: get a new one from "
            f"GET /v1/podcasts/{paid}/feed-url",
            "code": 403,
        }
    # A free feed needs no grant: an app still holding an expired one gets the public feed,
    # exactly as anyone does, and can play its episodes.
    expired = await node.client.get(f"{PODCASTS}/{free}/rss.xml?grant={free_grant}")
    public = await node.client.get(f"{PODCASTS}/{free}/rss.xml")
    assert expired.status == public.status == 200
    assert await expired.read() == await public.read()
    assert expired.headers["ETag"] == public.headers["ETag"]
    assert expired.headers["Cache-Control"] == "public, no-cache"
    media = f"{PODCASTS}/{free}/episodes/{free_episode}/media.mp3?grant={free_grant}"
    response = await node.client.get(media, allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == host.url()


async def test_signing_out_everywhere_closes_the_private_feed(node, host):
    """A leaked feed URL is shut by changing the password, as a leaked token is; the new
    URL the subscriber then asks for works, and the old one keeps being refused."""
    dj, podcast_id, upload_episode, _ = await premium_podcast(node, host, make_mp3(1.0))
    subscriber = await subscriber_of(node.client, dj)
    old = await private_url(node, subscriber, podcast_id)
    old_media = f"{PODCASTS}/{podcast_id}/episodes/{upload_episode}/media.mp3?grant={grant_of(old)}"
    assert (await node.client.get(path_of(old["feed_url"]))).status == 200
    subscriber = await sign_out_everywhere(node.client, subscriber)
    for url in (path_of(old["feed_url"]), old_media):
        response = await node.client.get(url)
        assert response.status == 403, url
        assert await response.json() == {
            "error": "This private feed URL was signed out (the account's password was "
            f"changed after it was issued): get a new one from GET /v1/podcasts/{podcast_id}"
            "/feed-url",
            "code": 403,
        }
    new = await private_url(node, subscriber, podcast_id)
    assert new["feed_url"] != old["feed_url"]
    assert (await private_url(node, subscriber, podcast_id))["feed_url"] == new["feed_url"]
    response = await node.client.get(path_of(new["feed_url"]))
    assert response.status == 200
    assert upload_episode in {i.findtext("guid") for i in items(parse_xml(await response.read()))}
    media = f"{PODCASTS}/{podcast_id}/episodes/{upload_episode}/media.mp3?grant={grant_of(new)}"
    assert (await node.client.get(media)).status == 200
    assert (await node.client.get(path_of(old["feed_url"]))).status == 403


async def test_a_deleted_account_closes_the_private_feed(node, host):
    dj, podcast_id, *_ = await premium_podcast(node, host, make_mp3(1.0))
    subscriber = await subscriber_of(node.client, dj)
    private = await private_url(node, subscriber, podcast_id)
    free = await create_podcast(node.client, dj)
    free_url = path_of((await private_url(node, subscriber, free))["feed_url"])
    assert (await node.client.delete("/v1/users/me", headers=subscriber)).status == 204
    response = await node.client.get(path_of(private["feed_url"]))
    assert response.status == 403
    assert await response.json() == {
        "error": "This private feed URL's account no longer exists",
        "code": 403,
    }
    # The free feed was never the account's to close: it reads as the public one.
    response = await node.client.get(free_url)
    assert response.status == 200 and response.headers["Cache-Control"] == "public, no-cache"


async def test_only_the_public_feed_is_publicly_cacheable(node, host):
    """What a CDN may keep for everyone: the free feed. Paywalled feeds, and any feed read
    through a private URL, are for whoever asked — on 200 and on 304 alike."""
    dj, paid, *_ = await premium_podcast(node, host, make_mp3(1.0))
    free = await create_podcast(node.client, dj)
    subscriber = await subscriber_of(node.client, dj)
    paid_url = path_of((await private_url(node, subscriber, paid))["feed_url"])
    free_url = path_of((await private_url(node, subscriber, free))["feed_url"])
    private = ("private, no-cache", "Authorization")
    for url, headers, expected in (
        (f"{PODCASTS}/{free}/rss.xml", {}, ("public, no-cache", None)),
        (f"{PODCASTS}/{free}/rss.xml", subscriber, ("public, no-cache", None)),
        (f"{PODCASTS}/{paid}/rss.xml", subscriber, private),
        (paid_url, {}, private),
        (free_url, {}, private),
    ):
        first = await node.client.get(url, headers=headers)
        etag = first.headers["ETag"]
        again = await node.client.get(url, headers={**headers, "If-None-Match": etag})
        for response, status in ((first, 200), (again, 304)):
            assert response.status == status, url
            seen = (response.headers["Cache-Control"], response.headers.get("Vary"))
            assert seen == expected, (url, status)


async def test_paywalled_external_episodes_never_show_their_url(node, host):
    _, dj = await user_headers(node.client, "dj")
    podcast_id = await create_podcast(node.client, dj)
    free = await add_episode(node.client, dj, podcast_id, external_episode(host.url(), 1))
    paid = await add_episode(
        node.client,
        dj,
        podcast_id,
        external_episode(host.url("/chunked.mp3"), 2, monetization_required=True),
    )
    media = f"{PODCASTS}/{podcast_id}/episodes/{paid}/media.mp3"
    # The podcast page is public (only an episode is paywalled): no raw URL in it.
    page = await (await node.client.get(f"{PODCASTS}/{podcast_id}")).json()
    urls = {e["episode_id"]: e["media_url"] for e in page["episodes"]}
    assert urls == {free: host.url(), paid: PUBLIC_URL + media}
    owner = await (await node.client.get(f"{PODCASTS}/{podcast_id}", headers=dj)).json()
    assert host.url("/chunked.mp3") in [e["media_url"] for e in owner["episodes"]]
    # The feed (behind the paywall) encloses this server's route, which checks it.
    subscriber = await subscriber_of(node.client, dj)
    feed = await get_feed(node.client, podcast_id, subscriber)
    enclosures = {i.findtext("guid"): i.find("enclosure") for i in items(feed)}
    assert enclosures[paid].get("url") == PUBLIC_URL + media  # type: ignore[union-attr]
    assert enclosures[free].get("url") == host.url()  # type: ignore[union-attr]
    assert (await node.client.get(media, allow_redirects=False)).status == 403
    response = await node.client.get(media, headers=subscriber, allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == host.url("/chunked.mp3")


async def test_the_private_feed_at_the_custom_domain(node):
    _, dj = await user_headers(node.client, "dj")
    domain = await node.client.post(
        "/v1/domains", json={"custom_domain": f"p{uuid.uuid4().hex[:8]}.dj.test"}, headers=dj
    )
    hostname = (await domain.json())["custom_domain"]
    node.advance(seconds=5)
    audio = make_mp3(1.0)
    upload = await ready_upload(node.client, dj, audio)
    podcast_id = await create_podcast(node.client, dj, custom_domain=hostname)
    episode_id = await add_episode(
        node.client,
        dj,
        podcast_id,
        {"title": "One", "source_type": "upload", "upload_id": upload["upload_id"]},
    )
    private = await private_url(node, dj, podcast_id)
    grant = private["feed_url"].split("?grant=")[1]
    assert private["custom_feed_url"] == f"https://{hostname}/rss.xml?grant={grant}"
    response = await node.client.get(f"/rss.xml?grant={grant}", headers={"Host": hostname})
    assert response.status == 200
    [item] = items(parse_xml(await response.read()))
    url = item.find("enclosure").get("url")  # type: ignore[union-attr]
    assert url == f"https://{hostname}/episodes/{episode_id}/media.mp3?grant={grant}"
    response = await node.client.get(
        f"/episodes/{episode_id}/media.mp3?grant={grant}", headers={"Host": hostname}
    )
    assert response.status == 200 and await response.read() == audio
