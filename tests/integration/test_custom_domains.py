"""US-4.7 and US-4.8: custom domains registered, verified by the staging stub after
DOMAIN_VERIFY_DELAY_SECONDS (a clock the test moves), attached to a podcast, and then serving
its feed and episode media to requests with that `Host`."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest

from tests.accounts import user_headers
from tests.audio import make_mp3
from tests.podcasts import (
    NS,
    PODCASTS,
    PUBLIC_URL,
    add_episode,
    create_podcast,
    external_episode,
    guids,
    items,
    parse_xml,
    start_audio_host,
    start_pod_node,
)
from tests.uploads import ready_upload

DOMAINS = "/v1/domains"
HOSTNAME = "podcast.djname.test"


@pytest.fixture
async def node(make_client, make_settings, test_secrets):
    return await start_pod_node(make_client, make_settings, test_secrets)


def unique_host() -> str:
    return f"pod-{uuid.uuid4().hex[:8]}.djname.test"


async def register_domain(node, headers, hostname=None) -> dict:
    response = await node.client.post(
        DOMAINS, json={"custom_domain": hostname or unique_host()}, headers=headers
    )
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def verified_domain(node, headers) -> dict:
    domain = await register_domain(node, headers)
    node.advance(seconds=5)
    response = await node.client.get(f"{DOMAINS}/{domain['domain_id']}", headers=headers)
    body = dict(await response.json())
    assert body["verification_status"] == "verified", body
    return body


async def test_register_returns_the_dns_challenge(node):
    _, dj = await user_headers(node.client, "dj")
    host = unique_host()
    body = await register_domain(node, dj, f"  {host.upper()}. ")
    assert body["custom_domain"] == host
    assert body["verification_status"] == "pending" and body["tls_status"] == "pending"
    # US-4.7: the record's value as a string, e.g. "acme-challenge=STAGING123".
    value = body["dns_challenge_record"]
    assert re.fullmatch(r"acme-challenge=[0-9a-f]{32}", value), value
    assert body["dns_record"] == {
        "type": "TXT",
        "name": f"_mediaserver-challenge.{host}",
        "value": value,
    }
    assert body["dns_record"]["name"] in body["instructions"] and value in body["instructions"]
    assert body["podcast_id"] is None and body["verified_at"] is None
    other = await register_domain(node, dj)
    assert other["dns_challenge_record"] != value
    fetched = await (await node.client.get(f"{DOMAINS}/{body['domain_id']}", headers=dj)).json()
    assert fetched["dns_challenge_record"] == value


@pytest.mark.parametrize(
    "hostname",
    ["localhost", "no_underscores.example.com", "-dash.example.com", "example", "1.2.3.4",
     "a" * 64 + ".example.com", "space here.com", "example.c"],
)  # fmt: skip
async def test_invalid_host_names_are_400(node, hostname):
    _, dj = await user_headers(node.client, "dj")
    response = await node.client.post(DOMAINS, json={"custom_domain": hostname}, headers=dj)
    assert response.status == 400
    assert (await response.json())["error"] == (
        "Field 'custom_domain' must be a domain name such as podcast.example.com."
    )


async def test_a_domain_is_registered_once(node):
    _, dj = await user_headers(node.client, "dj")
    _, other = await user_headers(node.client, "dj")
    domain = await register_domain(node, dj)
    for headers in (dj, other):
        response = await node.client.post(
            DOMAINS, json={"custom_domain": domain["custom_domain"]}, headers=headers
        )
        assert response.status == 409
    response = await node.client.post(
        DOMAINS, json={"custom_domain": "pods.example.com"}, headers=dj
    )
    assert response.status == 409  # this server's own host name
    assert (await node.client.delete(f"{DOMAINS}/{domain['domain_id']}", headers=dj)).status == 204
    await register_domain(node, other, domain["custom_domain"])  # freed


async def test_domain_routes_need_the_domain_scopes(node):
    assert (await node.client.post(DOMAINS, json={"custom_domain": HOSTNAME})).status == 401
    _, listener = await user_headers(node.client, "listener")
    response = await node.client.post(DOMAINS, json={"custom_domain": HOSTNAME}, headers=listener)
    assert response.status == 403
    assert (await node.client.get(DOMAINS, headers=listener)).status == 403


async def test_the_stub_verifies_after_the_delay(node):
    _, dj = await user_headers(node.client, "dj")
    domain = await register_domain(node, dj)
    url = f"{DOMAINS}/{domain['domain_id']}"
    node.advance(seconds=4)
    body = await (await node.client.get(url, headers=dj)).json()
    assert (body["verification_status"], body["tls_status"]) == ("pending", "pending")
    node.advance(seconds=1)
    body = await (await node.client.get(url, headers=dj)).json()
    assert (body["verification_status"], body["tls_status"]) == ("verified", "issued")
    assert datetime.fromisoformat(body["verified_at"]) == node.now
    assert datetime.fromisoformat(body["last_checked"]) == node.now
    listed = await (await node.client.get(DOMAINS, headers=dj)).json()
    assert [d["domain_id"] for d in listed["domains"]] == [domain["domain_id"]]
    assert listed["domains"][0]["verification_status"] == "verified"


async def test_domains_are_private_to_their_owner(node):
    _, dj = await user_headers(node.client, "dj")
    _, other = await user_headers(node.client, "dj")
    _, admin = await user_headers(node.client, "admin")
    domain = await register_domain(node, dj)
    url = f"{DOMAINS}/{domain['domain_id']}"
    assert (await node.client.get(url, headers=other)).status == 403
    assert (await node.client.delete(url, headers=other)).status == 403
    assert (await node.client.get(url, headers=admin)).status == 200
    assert (await node.client.get(f"{DOMAINS}/{uuid.uuid4()}", headers=dj)).status == 404
    assert (await node.client.get(f"{DOMAINS}/nope", headers=dj)).status == 404
    assert (await (await node.client.get(DOMAINS, headers=other)).json())["domains"] == []


async def test_attaching_needs_a_verified_domain_of_the_owner(node):
    _, dj = await user_headers(node.client, "dj")
    _, other = await user_headers(node.client, "dj")
    pending = await register_domain(node, dj)
    response = await node.client.post(
        PODCASTS, json=podcast_json(pending["custom_domain"]), headers=dj
    )
    assert response.status == 422
    assert (await response.json())["error"].endswith("is not verified yet")
    response = await node.client.post(PODCASTS, json=podcast_json(unique_host()), headers=dj)
    assert response.status == 422
    assert "register it with POST /v1/domains" in (await response.json())["error"]
    theirs = await register_domain(node, other)
    response = await node.client.post(
        PODCASTS, json=podcast_json(theirs["custom_domain"]), headers=dj
    )
    assert response.status == 409
    node.advance(seconds=5)  # verified now, without anyone polling
    podcast_id = await create_podcast(node.client, dj, custom_domain=pending["custom_domain"])
    response = await node.client.post(
        PODCASTS, json=podcast_json(pending["custom_domain"]), headers=dj
    )
    assert response.status == 409  # in use by the first podcast
    body = await (await node.client.get(f"{DOMAINS}/{pending['domain_id']}", headers=dj)).json()
    assert body["podcast_id"] == podcast_id
    page = await (await node.client.get(f"{PODCASTS}/{podcast_id}")).json()
    assert page["custom_domain"] == pending["custom_domain"]
    assert page["custom_feed_url"] == f"https://{pending['custom_domain']}/rss.xml"


def enclosures(feed) -> dict[str, str | None]:
    """Each item's enclosure URL, by guid."""
    found = {}
    for item in items(feed):
        enclosure = item.find("enclosure")
        assert enclosure is not None
        found[item.findtext("guid") or ""] = enclosure.get("url")
    return found


def podcast_json(custom_domain: str) -> dict:
    from tests.podcasts import podcast_body

    return podcast_body(custom_domain=custom_domain)


async def test_host_routed_feed_and_media(node, aiohttp_server):
    host = await start_audio_host(aiohttp_server)
    _, dj = await user_headers(node.client, "dj")
    audio = make_mp3(2.0)
    upload = await ready_upload(node.client, dj, audio)
    podcast_id = await create_podcast(node.client, dj)
    episode_id = await add_episode(
        node.client,
        dj,
        podcast_id,
        {
            "title": "From an upload",
            "source_type": "upload",
            "upload_id": upload["upload_id"],
            "episode_number": 1,
        },
    )
    external_id = await add_episode(node.client, dj, podcast_id, external_episode(host.url(), 2))
    domain = await register_domain(node, dj)
    hostname = domain["custom_domain"]
    assert (await node.client.get("/rss.xml", headers={"Host": hostname})).status == 404
    guid_before = parse_xml(
        await (await node.client.get(f"{PODCASTS}/{podcast_id}/rss.xml")).read()
    ).findtext("channel/podcast:guid", namespaces=NS)
    node.advance(seconds=5)
    url = f"{PODCASTS}/{podcast_id}"
    response = await node.client.patch(url, json={"custom_domain": hostname}, headers=dj)
    assert response.status == 200
    for host_header in (hostname, f"{hostname.upper()}:443", f"{hostname}."):
        response = await node.client.get("/rss.xml", headers={"Host": host_header})
        assert response.status == 200, host_header
        assert response.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
        feed = parse_xml(await response.read())
        assert episode_id in guids(feed)
        link = feed.find("channel/atom:link", NS)
        assert link is not None and link.get("href") == f"https://{hostname}/rss.xml"
        # Apps keep following the same show: its podcast:guid survives the move.
        assert feed.findtext("channel/podcast:guid", namespaces=NS) == guid_before
        # Enclosures of ours are at the domain too (the host-routed media path).
        assert enclosures(feed) == {
            episode_id: f"https://{hostname}/episodes/{episode_id}/media.mp3",
            external_id: host.url(),
        }
    # At the API's own URL the feed still encloses the API's media route.
    api_feed = parse_xml(await (await node.client.get(f"{url}/rss.xml")).read())
    assert enclosures(api_feed)[episode_id] == f"{PUBLIC_URL}{url}/episodes/{episode_id}/media.mp3"
    assert api_feed.findtext("channel/podcast:guid", namespaces=NS) == guid_before
    media = f"/episodes/{episode_id}/media.mp3"
    response = await node.client.get(media, headers={"Host": hostname, "Range": "bytes=10-19"})
    assert response.status == 206 and await response.read() == audio[10:20]
    head = await node.client.head(media, headers={"Host": hostname})
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(audio)
    assert (await node.client.get(media)).status == 404  # not on the API's own host
    assert (await node.client.get("/rss.xml", headers={"Host": unique_host()})).status == 404


async def test_detaching_and_deleting(node):
    _, dj = await user_headers(node.client, "dj")
    domain = await verified_domain(node, dj)
    hostname = domain["custom_domain"]
    podcast_id = await create_podcast(node.client, dj, custom_domain=hostname)
    by_host = {"Host": hostname}
    assert (await node.client.get("/rss.xml", headers=by_host)).status == 200
    url = f"{DOMAINS}/{domain['domain_id']}"
    response = await node.client.delete(url, headers=dj)
    assert response.status == 409
    assert "detach it first" in (await response.json())["error"]
    response = await node.client.patch(
        f"{PODCASTS}/{podcast_id}", json={"custom_domain": None}, headers=dj
    )
    assert response.status == 200
    assert (await node.client.get("/rss.xml", headers=by_host)).status == 404  # at once
    second = await create_podcast(node.client, dj, custom_domain=hostname)
    assert (await node.client.get("/rss.xml", headers=by_host)).status == 200
    assert (await node.client.delete(f"{PODCASTS}/{second}", headers=dj)).status == 204
    assert (await node.client.get("/rss.xml", headers=by_host)).status == 404
    body = await (await node.client.get(url, headers=dj)).json()
    assert body["podcast_id"] is None
    assert (await node.client.delete(url, headers=dj)).status == 204
    assert (await node.client.get(url, headers=dj)).status == 404


async def test_a_detach_on_one_node_stops_every_node_at_once(
    make_client, make_settings, test_secrets, redis_url
):
    """Two nodes of one cluster (one database, one Redis): the host map of the node that
    did not see the change must not keep serving the domain for its TTL."""
    first = await start_pod_node(make_client, make_settings, test_secrets, redis_url=redis_url)
    second = await start_pod_node(make_client, make_settings, test_secrets, redis_url=redis_url)
    _, dj = await user_headers(first.client, "dj")
    domain = await verified_domain(first, dj)
    hostname = domain["custom_domain"]
    by_host = {"Host": hostname}
    podcast_id = await create_podcast(first.client, dj, custom_domain=hostname)
    for node in (first, second):  # both have it in their host map now
        assert (await node.client.get("/rss.xml", headers=by_host)).status == 200
    response = await first.client.patch(
        f"{PODCASTS}/{podcast_id}", json={"custom_domain": None}, headers=dj
    )
    assert response.status == 200
    assert (await second.client.get("/rss.xml", headers=by_host)).status == 404
    other = await create_podcast(second.client, dj, custom_domain=hostname)
    assert (await first.client.get("/rss.xml", headers=by_host)).status == 200
    assert (await second.client.delete(f"{PODCASTS}/{other}", headers=dj)).status == 204
    assert (await first.client.get("/rss.xml", headers=by_host)).status == 404
