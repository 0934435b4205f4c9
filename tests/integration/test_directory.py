"""The directory's on-air flag and filters, now playing from heartbeats (another node's or
an external relay's: the cluster-wide figures), and the paywall that names the DJ's plans
while a public paid stream's status stays public."""

from __future__ import annotations

import pytest

from tests.accounts import user_headers
from tests.sources import IcecastSource, fake_servers_fixture  # noqa: F401 - fake_servers
from tests.streams import PUBLIC_URL, STREAMS, register_stream, start_node, subscriber_of


@pytest.fixture
async def node(make_client, make_settings, test_secrets):
    return await start_node(make_client, make_settings, test_secrets)


@pytest.fixture
async def source(fake_servers):
    return await fake_servers(IcecastSource)


@pytest.fixture
def relay_token(test_secrets) -> dict[str, str]:
    return {"Authorization": f"Bearer {test_secrets.relay_service_token}"}


async def listed(node, **query) -> dict[str, dict]:
    response = await node.client.get(STREAMS, params=query)
    assert response.status == 200, await response.text()
    return {s["stream_id"]: s for s in (await response.json())["streams"]}


async def test_directory_flags_and_filters_streams_on_air(node, source, relay_token):
    _, dj = await user_headers(node.client)
    house = await register_stream(node.client, dj, source, name="Friday 100% House")
    techno = await register_stream(
        node.client, dj, source, name="Morning", genre="Techno", description="Early techno"
    )
    beat = {"listeners": 42, "uptime_seconds": 600, "current_title": "Artist - Track"}
    sent = await node.client.post(f"{STREAMS}/{house}/heartbeat", json=beat, headers=relay_token)
    assert sent.status == 200

    everything = await listed(node)
    assert everything[house]["on_air"] is True
    assert everything[house]["current_title"] == "Artist - Track"
    assert everything[house]["listeners"] == 42
    assert everything[techno]["on_air"] is False and everything[techno]["current_title"] is None

    on_air = await listed(node, on_air="true")
    assert house in on_air and techno not in on_air
    assert set(await listed(node, genre="TECHNO")) == {techno}
    assert set(await listed(node, q="early")) == {techno}  # in the description
    assert set(await listed(node, q="100%")) == {house}  # % is a character, not a wildcard
    assert await listed(node, q="_") == {}
    assert await listed(node, on_air="true", genre="Techno") == {}
    page = await (await node.client.get(STREAMS, params={"on_air": "true", "per_page": 1})).json()
    assert page["per_page"] == 1 and page["total"] == len(on_air)

    # Now playing in one call, with the count the relaying node reported (cluster-wide).
    body = await (await node.client.get("/v1/nowplaying")).json()
    stations = {s["stream_id"]: s for s in body["stations"]}
    assert techno not in stations
    assert stations[house]["listeners"] == 42
    assert stations[house]["song"] == {
        "text": "Artist - Track",
        "artist": "Artist",
        "title": "Track",
        "started_at": None,  # the history knows no song: an external relay's title
        "ended_at": None,
    }


async def test_a_public_paid_streams_status_is_public_and_the_paywall_names_the_plans(node, source):
    dj_user, dj = await user_headers(node.client)
    subscriber = await subscriber_of(node.client, dj)  # the DJ now has a plan
    _, other_dj = await user_headers(node.client)
    plan = {"name": "Other", "price_cents": 100, "currency": "USD", "billing_interval": "monthly"}
    created = await node.client.post("/v1/monetization/plans", json=plan, headers=other_dj)
    assert created.status == 201
    stream_id = await register_stream(node.client, dj, source, monetization_enabled=True)

    status = await node.client.get(f"{STREAMS}/{stream_id}/status")
    assert status.status == 200  # US-2.5: public status needs no auth

    refused = await node.client.get(f"{STREAMS}/{stream_id}/live.mp3")
    assert refused.status == 403
    plans_url = f"{PUBLIC_URL}/v1/monetization/plans?owner_id={dj_user['user_id']}"
    assert await refused.json() == {
        "error": "Subscription required",
        "code": 403,
        "owner_id": dj_user["user_id"],
        "plans_url": plans_url,
    }
    plans = await node.client.get(plans_url.removeprefix(PUBLIC_URL), headers=subscriber)
    body = await plans.json()
    own = [p for p in body["plans"] if not p["platform_wide"]]  # admins' open everything
    assert [p["owner_id"] for p in own] == [dj_user["user_id"]]
