"""The API as an attacker tries it (issue 11, "Hardening, measured"): forged-token floods
are rate-limited, another account's resources answer 403/404 and never their data, SQL
fragments and path traversal are plain data, and a stream's key appears in no response.

(JWT forgeries, refresh-token reuse, RSS escaping and stream keys in logs have their own
tests in test_auth.py, test_podcast_feed.py and test_streams_api.py.)"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.accounts import user_headers
from tests.audio import make_mp3
from tests.podcasts import create_podcast
from tests.sources import IcecastSource, fake_servers_fixture  # noqa: F401 - fixture
from tests.streams import register_stream, start_node, subscriber_of
from tests.uploads import UPLOADS, upload_mp3

AD = {"position_seconds": 1, "duration_seconds": 30, "ad_type": "mid-roll"}
SQL = ["' OR '1'='1", "'; DROP TABLE users; --", '" OR ""="', "1; SELECT pg_sleep(5)--"]


async def test_a_flood_of_forged_tokens_is_rate_limited(make_client):
    client = await make_client(rate_limit_metadata_per_minute=5)
    statuses = []
    for i in range(8):
        response = await client.get(
            "/v1/users/me", headers={"Authorization": f"Bearer forged.token.{i}"}
        )
        statuses.append(response.status)
        if response.status == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert (await response.json())["code"] == 429
    assert statuses == [401] * 5 + [429] * 3
    # A malformed Authorization header counts the same way.
    response = await client.get("/v1/users/me", headers={"Authorization": "Basic abc"})
    assert response.status == 429


async def test_another_accounts_resources_are_403_or_404_never_data(
    make_client, make_settings, test_secrets, fake_servers
):
    node = await start_node(make_client, make_settings, test_secrets)
    client = node.client
    owner, owner_h = await user_headers(client, "dj")
    _, intruder_h = await user_headers(client, "dj")
    source = await fake_servers(IcecastSource)
    stream_id = await register_stream(client, owner_h, source, visibility="private")
    upload_id = (await upload_mp3(client, owner_h, make_mp3(1.0), title="Secret Mix"))["upload_id"]
    podcast_id = await create_podcast(
        client, owner_h, title="Secret Show", monetization_enabled=True
    )
    domain = await client.post(
        "/v1/domains", json={"custom_domain": "secret.example.com"}, headers=owner_h
    )
    domain_id = (await domain.json())["domain_id"]
    listener_h = await subscriber_of(client, owner_h)
    subs = await (await client.get("/v1/monetization/subscriptions", headers=listener_h)).json()
    subscription_id = subs["subscriptions"][0]["subscription_id"]

    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PATCH", f"/v1/streams/{stream_id}", {"name": "mine now"}),
        ("DELETE", f"/v1/streams/{stream_id}", None),
        ("GET", f"/v1/streams/{stream_id}/ads", None),
        ("POST", f"/v1/streams/{stream_id}/ads", {"ad_markers": [AD]}),
        ("GET", f"/v1/analytics/streams/{stream_id}", None),
        ("GET", f"{UPLOADS}/{upload_id}", None),
        ("DELETE", f"{UPLOADS}/{upload_id}", None),
        ("GET", f"{UPLOADS}/{upload_id}/hls/manifest.m3u8", None),
        ("GET", f"/v1/podcasts/{podcast_id}", None),
        ("GET", f"/v1/podcasts/{podcast_id}/feed-url", None),
        ("PATCH", f"/v1/podcasts/{podcast_id}", {"title": "mine now"}),
        ("DELETE", f"/v1/podcasts/{podcast_id}", None),
        ("GET", f"/v1/podcasts/{podcast_id}/rss.xml", None),
        ("GET", f"/v1/domains/{domain_id}", None),
        ("DELETE", f"/v1/domains/{domain_id}", None),
        ("DELETE", f"/v1/monetization/subscriptions/{subscription_id}", None),
    ]
    for method, path, body in attempts:
        response = await client.request(method, path, json=body, headers=intruder_h)
        text = await response.text()
        assert response.status in (403, 404), (method, path, response.status, text)
        for secret in ("Secret Mix", "Secret Show", "secret.example.com", owner["email"]):
            assert secret not in text, (method, path)
    # Nothing changed for the owner.
    assert (await client.get(f"/v1/streams/{stream_id}", headers=owner_h)).status == 200
    assert (await client.get(f"{UPLOADS}/{upload_id}", headers=owner_h)).status == 200
    assert (await client.get(f"/v1/domains/{domain_id}", headers=owner_h)).status == 200
    subs = await (await client.get("/v1/monetization/subscriptions", headers=listener_h)).json()
    assert subs["subscriptions"][0]["status"] == "active"


@pytest.mark.parametrize("fragment", SQL)
async def test_sql_fragments_are_plain_data(client, fragment):
    _, headers = await user_headers(client, "dj")
    response = await client.patch("/v1/users/me", json={"name": fragment}, headers=headers)
    assert response.status == 200 and (await response.json())["name"] == fragment
    response = await client.post(
        "/v1/auth/login", json={"email": f"a{fragment}@example.com", "password": fragment}
    )
    assert response.status in (400, 401)
    for query in (f"page={fragment}", f"mine={fragment}", f"{fragment}=1"):
        response = await client.get("/v1/streams", params=_query(query), headers=headers)
        assert response.status == 400
        assert (await response.json())["code"] == 400
    response = await client.get(
        f"/v1/analytics/streams/{uuid.uuid4()}", params={"from": fragment}, headers=headers
    )
    assert response.status == 400
    assert (await client.get("/v1/users/me", headers=headers)).status == 200  # tables intact


def _query(text: str) -> dict[str, str]:
    name, _, value = text.partition("=")
    return {name: value}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/streams/..%2F..%2Fetc%2Fpasswd",
        "/v1/uploads/audio/..%2F..%2F..%2Fetc%2Fpasswd",
        "/v1/uploads/audio/%2E%2E/hls/manifest.m3u8",
        f"/v1/uploads/audio/{uuid.uuid4()}/hls/segment000..%2F..%2Fsecret.ts",
        f"/v1/uploads/audio/{uuid.uuid4()}/hls/..%2Fsegment000.ts",
        f"/v1/playlists/{uuid.uuid4()}/hls/..%2F..%2Fuploads/segment000.ts",
        f"/v1/streams/{uuid.uuid4()}/hls/..%2F1.ts",
        "/v1/podcasts/..%5C..%5Cwindows/rss.xml",
        "/episodes/%00/media.mp3",
    ],
)
async def test_traversal_in_ids_and_segment_names_is_404(client, path):
    _, headers = await user_headers(client, "dj")
    response = await client.get(path, headers=headers)
    assert response.status in (400, 404), await response.text()
    body = await response.json()
    assert body["code"] == response.status and "root:" not in body["error"]


async def test_metrics_can_be_restricted_to_a_bearer_token(make_client):
    open_node = await make_client()
    assert (await open_node.get("/metrics")).status == 200
    client = await make_client(metrics_token="s3cret-scraper-token")
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "s3cret-scraper-token"},
    ):
        response = await client.get("/metrics", headers=headers)
        assert response.status == 401
        assert (await response.json())["code"] == 401
    response = await client.get(
        "/metrics", headers={"Authorization": "Bearer s3cret-scraper-token"}
    )
    assert response.status == 200 and "http_requests_total" in await response.text()
