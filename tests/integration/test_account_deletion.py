"""Issue 14: a deleted account takes what it offered down with it: its stream stops and
leaves the directory, its podcast's feed and media answer 410, its playlists go, its plan
can no longer be bought and the subscriptions to it end."""

from __future__ import annotations

from tests import playlists
from tests.accounts import bearer, login, register, user_headers
from tests.livenode import eventually
from tests.playlists import external_track
from tests.podcasts import (
    add_episode,
    create_podcast,
    external_episode,
    start_audio_host,
    start_pod_node,
)
from tests.sources import IcecastSource
from tests.streams import register_stream

PLAN = {"name": "Premium", "price_cents": 500, "currency": "USD", "billing_interval": "monthly"}


async def test_a_deleted_dj_takes_streams_feeds_and_plans_down(
    make_client, make_settings, test_secrets, aiohttp_server, fake_servers
):
    node = await start_pod_node(make_client, make_settings, test_secrets)
    client = node.client
    host = await start_audio_host(aiohttp_server)
    source = await fake_servers(IcecastSource)
    dj, dj_headers = await user_headers(client)
    stream_id = await register_stream(client, dj_headers, source)
    podcast_id = await create_podcast(client, dj_headers)
    episode_id = await add_episode(client, dj_headers, podcast_id, external_episode(host.url()))
    playlist_id = await playlists.create(client, dj_headers, [external_track(host.url())])
    plan = await (await client.post("/v1/monetization/plans", json=PLAN, headers=dj_headers)).json()
    _, fan = await user_headers(client, "listener")
    subscribe = {"plan_id": plan["plan_id"], "stripe_payment_method_id": "pm_ok"}
    subscribed = await client.post("/v1/monetization/subscriptions", json=subscribe, headers=fan)
    assert subscribed.status == 201

    async def playing():
        response = await client.get(f"/v1/streams/{stream_id}/live.mp3")
        ok = response.status == 200
        response.close()
        return ok or None

    await eventually(playing, timeout=20)
    feed = f"/v1/podcasts/{podcast_id}/rss.xml"
    media = f"/v1/podcasts/{podcast_id}/episodes/{episode_id}/media.mp3"
    assert (await client.get(feed)).status == 200
    assert (await client.get(f"/v1/playlists/{playlist_id}")).status == 200

    assert (await client.delete("/v1/users/me", headers=dj_headers)).status == 204

    directory = await (await client.get("/v1/streams?per_page=100")).json()
    assert stream_id not in [s["stream_id"] for s in directory["streams"]]
    assert (await client.get(f"/v1/streams/{stream_id}")).status == 404
    assert (await client.get(f"/v1/streams/{stream_id}/live.mp3")).status == 404
    for path in (feed, media):
        gone = await client.get(path)
        assert gone.status == 410, path
        assert "removed along with its owner's account" in (await gone.json())["error"]
    assert (await client.get(f"/v1/playlists/{playlist_id}")).status == 404
    # The plan cannot be bought any more; the fan's subscription ended (not charged again).
    again = await user_headers(client, "listener")
    bought = await client.post("/v1/monetization/subscriptions", json=subscribe, headers=again[1])
    assert bought.status == 400
    mine = await (await client.get("/v1/monetization/subscriptions", headers=fan)).json()
    assert [s["status"] for s in mine["subscriptions"]] == ["canceled"]
    # The account itself is anonymised: its email is free, its sessions are over.
    assert (await client.get("/v1/users/me", headers=dj_headers)).status == 401
    reborn = await register(client, email=dj["email"])
    await login(client, reborn["email"])
    assert (await client.get("/v1/users/me", headers=bearer(dj))).status == 401
