"""US-2.4, US-2.5, US-5.1 and the access rules of US-2.5 – 2.7 / US-6.3 through the HTTP API:
relay heartbeats, the live status with a clock the test moves, listener analytics, and who
may read or play private and monetized streams."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from control.security import ROLE_SCOPES, Principal
from control.streams.service import STREAMS as STREAMS_SERVICE
from mediaserver.errors import Forbidden, NotFound, Unauthenticated
from relay.status import RelaySnapshot
from tests.accounts import user_headers
from tests.livenode import eventually
from tests.sources import IcecastSource, fake_servers_fixture  # noqa: F401 - fake_servers
from tests.streams import STREAMS, TITLE, register_stream, start_node, subscriber_of

BEAT = {"listeners": 125, "uptime_seconds": 8040, "cpu_usage_percent": 37.5}


@pytest.fixture
async def node(make_client, make_settings, test_secrets):
    return await start_node(make_client, make_settings, test_secrets)


@pytest.fixture
async def source(fake_servers):
    return await fake_servers(IcecastSource, title=TITLE)


@pytest.fixture
def relay_token(test_secrets) -> dict[str, str]:
    return {"Authorization": f"Bearer {test_secrets.relay_service_token}"}


async def owned_stream(node, source, **changes) -> tuple[str, dict[str, str]]:
    """A new DJ's stream and the DJ's headers."""
    _, headers = await user_headers(node.client, "dj")
    return await register_stream(node.client, headers, source, **changes), headers


async def status_of(node, stream_id, headers=None, expected=200):
    response = await node.client.get(f"{STREAMS}/{stream_id}/status", headers=headers or {})
    assert response.status == expected, await response.text()
    return await response.json()


def principal(user: dict, scopes: frozenset[str] | None = None) -> Principal:
    """The caller as a media route hands it to the service."""
    role = user.get("role", "dj")
    scopes = frozenset(ROLE_SCOPES[role]) if scopes is None else scopes
    return Principal(uuid.UUID(user["user_id"]), user["email"], role, scopes, "test")


async def test_heartbeats_need_the_relay_service_token(node, source, relay_token):
    stream_id, dj = await owned_stream(node, source)
    url = f"{STREAMS}/{stream_id}/heartbeat"
    for headers in ({}, dj, {"Authorization": "Bearer not-the-token"}):
        response = await node.client.post(url, json=BEAT, headers=headers)
        assert response.status == 401
        assert (await response.json())["error"] == "A valid relay service token is required"
    response = await node.client.post(url, json=BEAT, headers=relay_token)
    assert response.status == 200 and await response.json() == {"status": "ok"}


async def test_heartbeat_of_unknown_disabled_or_deleted_streams(node, source, relay_token):
    stream_id, dj = await owned_stream(node, source)
    other_id = await register_stream(node.client, dj, source)
    for missing in (uuid.uuid4(), "not-a-uuid"):
        response = await node.client.post(
            f"{STREAMS}/{missing}/heartbeat", json=BEAT, headers=relay_token
        )
        assert response.status == 404
    await node.client.patch(f"{STREAMS}/{stream_id}", json={"enabled": False}, headers=dj)
    await node.client.delete(f"{STREAMS}/{other_id}", headers=dj)
    for gone in (stream_id, other_id):
        response = await node.client.post(
            f"{STREAMS}/{gone}/heartbeat", json=BEAT, headers=relay_token
        )
        assert response.status == 410
        assert await response.json() == {"error": "Stream is disabled or deleted", "code": 410}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"listeners": -1}, "Field 'listeners' must be at least 0."),
        ({"listeners": "5"}, "Field 'listeners' must be an integer."),
        ({"uptime_seconds": None}, "Field 'uptime_seconds' must be an integer."),
        ({"cpu_usage_percent": 100.5}, "Field 'cpu_usage_percent' must be at most 100.0."),
        ({"memory_usage_bytes": -5}, "Field 'memory_usage_bytes' must be at least 0."),
    ],
)
async def test_invalid_heartbeat_is_400(node, source, relay_token, change, message):
    stream_id, _ = await owned_stream(node, source)
    url = f"{STREAMS}/{stream_id}/heartbeat"
    response = await node.client.post(url, json={**BEAT, **change}, headers=relay_token)
    assert response.status == 400 and (await response.json())["error"] == message


async def test_heartbeat_listeners_feed_the_owners_analytics(node, source, relay_token):
    stream_id, dj = await owned_stream(node, source)
    url = f"{STREAMS}/{stream_id}/heartbeat"
    await node.client.post(url, json=BEAT, headers=relay_token)
    await node.client.app[STREAMS_SERVICE].record_heartbeat(
        uuid.UUID(stream_id), listeners=100, uptime_seconds=8070, node="mediaserver-0"
    )  # what the in-process relay does every 30 s

    report = await node.client.get(f"/v1/analytics/streams/{stream_id}", headers=dj)
    assert report.status == 200
    body = await report.json()
    today = node.clock.return_value.date().isoformat()
    assert {"date": today, "listeners": 225} in body["daily_listeners"]
    assert body["total_listens"] == 225
    _, other = await user_headers(node.client, "dj")
    denied = await node.client.get(f"/v1/analytics/streams/{stream_id}", headers=other)
    assert denied.status == 403
    unknown = await node.client.get(f"/v1/analytics/streams/{uuid.uuid4()}", headers=dj)
    assert unknown.status == 404


async def test_status_follows_heartbeats_by_the_two_and_five_minute_rules(
    node, source, relay_token
):
    stream_id, _ = await owned_stream(node, source)
    assert await status_of(node, stream_id) == {
        "stream_id": stream_id,
        "name": "Friday Night DJ Set",
        "current_track": None,
        "bitrate": None,
        "listeners": 0,
        "uptime": None,
        "uptime_seconds": None,
        "relay_connected": False,
        "last_heartbeat": None,
        "content_type": None,
    }
    beat = {**BEAT, "current_title": "Artist - Track", "bitrate_kbps": 128}
    sent_at = node.clock.return_value
    await node.client.post(f"{STREAMS}/{stream_id}/heartbeat", json=beat, headers=relay_token)

    node.advance(minutes=2)
    status = await status_of(node, stream_id)
    assert status["relay_connected"] is True and status["current_track"] == "Artist - Track"
    assert (status["bitrate"], status["listeners"], status["uptime"]) == ("128kbps", 125, "2h 16m")
    assert datetime.fromisoformat(status["last_heartbeat"]) == sent_at

    node.advance(seconds=1)
    status = await status_of(node, stream_id)
    assert status["relay_connected"] is False and status["current_track"] is None
    assert status["listeners"] == 0 and status["uptime"] is None

    node.advance(minutes=2, seconds=59)  # exactly 5 minutes since the heartbeat
    assert (await status_of(node, stream_id))["relay_connected"] is False
    node.advance(seconds=1)
    down = await status_of(node, stream_id, expected=503)
    assert down["error"] == "Relay has been offline for more than 5 minutes"
    assert down["code"] == 503


async def test_status_prefers_the_local_relay_and_never_invents_a_title(node, source, relay_token):
    stream_id, _ = await owned_stream(node, source)
    url = f"{STREAMS}/{stream_id}/heartbeat"
    await node.client.post(url, json=BEAT, headers=relay_token)  # no title in it
    status = await status_of(node, stream_id)
    assert status["relay_connected"] is True
    assert status["current_track"] is None and status["bitrate"] is None

    since = node.clock.return_value
    node.advance(minutes=10)
    node.relay.snapshots[uuid.UUID(stream_id)] = RelaySnapshot(
        connected=True, current_title="Live - From ICY", bitrate_kbps=192, listeners=9,
        connected_since=since, last_audio_at=node.clock.return_value,
    )  # fmt: skip
    status = await status_of(node, stream_id)  # the heartbeat is stale, the relay is not
    assert status["relay_connected"] is True and status["current_track"] == "Live - From ICY"
    assert (status["listeners"], status["bitrate"], status["uptime"]) == (9, "192kbps", "10m")


async def test_a_stream_never_heard_from_is_503_five_minutes_after_registration(node, source):
    stream_id, dj = await owned_stream(node, source)
    node.advance(minutes=5, seconds=1)
    await status_of(node, stream_id, expected=503)
    # Re-enabling gives the relay five minutes again.
    await node.client.patch(f"{STREAMS}/{stream_id}", json={"enabled": False}, headers=dj)
    assert (await status_of(node, stream_id, dj))["relay_connected"] is False  # disabled: no 503
    await node.client.patch(f"{STREAMS}/{stream_id}", json={"enabled": True}, headers=dj)
    assert (await status_of(node, stream_id))["relay_connected"] is False


async def test_private_streams_need_a_token_and_monetized_ones_a_subscription(node, source):
    private_id, dj = await owned_stream(node, source, visibility="private")
    paid_id = await register_stream(
        node.client, dj, source, visibility="private", monetization_enabled=True
    )
    _, listener = await user_headers(node.client, "listener")
    _, admin = await user_headers(node.client, "admin")
    subscriber = await subscriber_of(node.client, dj)

    for path in ("", "/status"):
        private, paid = f"{STREAMS}/{private_id}{path}", f"{STREAMS}/{paid_id}{path}"
        assert (await node.client.get(private)).status == 401
        assert (await node.client.get(private, headers=listener)).status == 200
        assert (await node.client.get(paid)).status == 401
        refused = await node.client.get(paid, headers=listener)
        assert (await refused.json())["error"] == "Subscription required"
        for allowed in (subscriber, dj, admin):
            assert (await node.client.get(paid, headers=allowed)).status == 200


async def test_public_monetized_stream_shows_metadata_and_status_to_anyone(node, source):
    """US-2.5: public status needs no auth, paid or not; the audio stays paywalled."""
    stream_id, _ = await owned_stream(node, source, monetization_enabled=True)
    assert (await node.client.get(f"{STREAMS}/{stream_id}")).status == 200
    assert (await status_of(node, stream_id))["stream_id"] == stream_id
    refused = await node.client.get(f"{STREAMS}/{stream_id}/live.mp3")
    assert refused.status == 403
    assert (await refused.json())["error"] == "Subscription required"


async def test_media_access_rules(node, source):
    dj, dj_headers = await user_headers(node.client, "dj")
    listener, _ = await user_headers(node.client, "listener")
    admin, _ = await user_headers(node.client, "admin")
    public = await register_stream(node.client, dj_headers, source)
    private = await register_stream(node.client, dj_headers, source, visibility="private")
    paid = await register_stream(node.client, dj_headers, source, monetization_enabled=True)
    service = node.client.app[STREAMS_SERVICE]

    row = await service.media_access(None, uuid.UUID(public))
    assert str(row.stream_id) == public and row.source().mount == source.mount
    with pytest.raises(Unauthenticated):
        await service.media_access(None, uuid.UUID(private))
    with pytest.raises(Forbidden):  # a token without streams:read
        await service.media_access(principal(listener, frozenset()), uuid.UUID(private))
    await service.media_access(principal(listener), uuid.UUID(private))
    for caller in (None, principal(listener)):
        with pytest.raises(Forbidden) as refused:
            await service.media_access(caller, uuid.UUID(paid))
        assert refused.value.body()["error"] == "Subscription required"
    for caller in (principal(dj), principal({**admin, "role": "admin"})):
        await service.media_access(caller, uuid.UUID(paid))

    await node.client.patch(f"{STREAMS}/{public}", json={"enabled": False}, headers=dj_headers)
    await node.client.delete(f"{STREAMS}/{private}", headers=dj_headers)
    for gone in (public, private, str(uuid.uuid4())):
        with pytest.raises(NotFound):  # disabled: no relay, even for the owner
            await service.media_access(principal(dj), uuid.UUID(gone))


async def test_listener_peak_holds_the_most_listeners_of_the_relays_run(node, source, relay_token):
    """Icecast's `listener_peak`: the most listeners at once since the source connected,
    kept across heartbeats of the same run and started again by a new one (uptime back)."""
    stream_id, _ = await owned_stream(node, source)
    url = f"{STREAMS}/{stream_id}/heartbeat"

    async def beat(listeners: int, uptime: int, peak: int) -> dict:
        sent = {"listeners": listeners, "uptime_seconds": uptime}
        assert (await node.client.post(url, json=sent, headers=relay_token)).status == 200

        async def shown() -> dict | None:  # GET /v1/nowplaying is reused for 0.5 s
            body = await (await node.client.get("/v1/nowplaying")).json()
            found = [s for s in body["stations"] if s["stream_id"] == stream_id]
            return found[0] if found and found[0]["listener_peak"] == peak else None

        return await eventually(shown, timeout=5)

    await beat(4, 1000, peak=4)
    await beat(9, 1010, peak=9)
    await beat(2, 1020, peak=9)
    stats = await (await node.client.get("/status-json.xsl")).json()
    assert stats["icestats"]["source"]["listener_peak"] == 9
    await beat(1, 5, peak=1)  # the source reconnected: a new run
