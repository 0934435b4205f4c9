"""US-2.1 – US-2.3, US-6.4 through the HTTP API on a real PostgreSQL, registering real-protocol
fake sources on loopback: registration with the source check, the sealed key, changes,
deletion, the directory and ad markers."""

from __future__ import annotations

import logging
import uuid

import pytest

from control.streams.probe import PROBE_FAILED, ProbeResult
from control.streams.schemas import AdMarker
from control.streams.service import STREAMS as STREAMS_SERVICE
from mediaserver.app import POOL
from mediaserver.crypto import SecretBox
from relay.status import RelaySnapshot, StreamSource
from tests.accounts import user_headers
from tests.sources import (
    IcecastSource,
    NotAStreamServer,
    ShoutcastV1Source,
    ShoutcastV2Source,
    fake_servers_fixture,  # noqa: F401 - provides the fake_servers fixture
)
from tests.streams import (
    PUBLIC_URL,
    STREAMS,
    TITLE,
    fresh_database,
    register_stream,
    start_node,
    stream_body,
)

MISSING = object()
KEY = "DJ_STREAM_KEY-5e2b9"


@pytest.fixture
async def node(make_client, make_settings, test_secrets):
    return await start_node(make_client, make_settings, test_secrets)


@pytest.fixture
async def source(fake_servers):
    return await fake_servers(IcecastSource, title=TITLE, admin_password=KEY)


@pytest.mark.parametrize(
    ("fake", "kind", "sid"),
    [
        (ShoutcastV1Source, "shoutcast1", None),
        (ShoutcastV2Source, "shoutcast2", 1),
        (IcecastSource, "icecast2", None),
    ],
)
async def test_registering_each_server_kind_starts_its_relay(node, fake_servers, fake, kind, sid):
    source = await fake_servers(fake)
    _, headers = await user_headers(node.client, "dj")
    response = await node.client.post(STREAMS, json=stream_body(source), headers=headers)
    assert response.status == 201
    body = await response.json()
    # `ingest` is for push streams only.
    assert body == {"stream_id": body["stream_id"], "status": "registered", "ingest": None}

    stream_id = uuid.UUID(body["stream_id"])
    assert node.relay.calls == [("ensure", stream_id)]
    assert node.relay.sources[stream_id] == StreamSource(
        stream_id, source.url, source.mount, kind, sid, "Friday Night DJ Set", "House",
        "Weekly house mix", listed=True,  # public and free: named in /metrics
    )  # fmt: skip
    detail = await (await node.client.get(f"{STREAMS}/{stream_id}")).json()
    assert detail["server_kind"] == kind and detail["enabled"] is True


async def test_the_key_is_sealed_to_its_row_and_never_shown(node, source, test_secrets, caplog):
    caplog.set_level(logging.DEBUG)
    _, headers = await user_headers(node.client, "dj")
    stream_id = await register_stream(node.client, headers, source)
    row_id = uuid.UUID(stream_id)

    sealed = await node.client.app[POOL].fetchval(
        "SELECT stream_key_enc FROM streams WHERE stream_id = $1", row_id
    )
    assert KEY.encode() not in sealed and KEY not in sealed.hex()
    assert SecretBox(test_secrets.stream_key_secret).open(sealed, row_id.bytes) == KEY
    stats = await node.client.app[STREAMS_SERVICE].admin_stats(row_id)
    assert stats == ProbeResult("icecast2", None, TITLE, 128, 0)

    pages = [
        await node.client.get(STREAMS),
        await node.client.get(STREAMS, params={"mine": "true"}, headers=headers),
        await node.client.get(f"{STREAMS}/{stream_id}", headers=headers),
        await node.client.patch(
            f"{STREAMS}/{stream_id}", json={"genre": "Techno"}, headers=headers
        ),
        await node.client.get(f"{STREAMS}/{stream_id}/status", headers=headers),
    ]
    for response in pages:
        assert response.status == 200 and KEY not in await response.text()
    assert KEY not in caplog.text


@pytest.mark.parametrize("failure", ["wrong key", "closed port", "web site"])
async def test_a_source_that_fails_the_check_is_refused_and_not_stored(
    node, source, fake_servers, failure
):
    body = stream_body(source)
    if failure == "wrong key":
        body["stream_key"] = "not-the-key"
    elif failure == "closed port":
        await source.stop()
    else:
        body["shoutcast_url"] = (await fake_servers(NotAStreamServer)).url
    _, headers = await user_headers(node.client, "dj")

    response = await node.client.post(STREAMS, json=body, headers=headers)
    assert response.status == 422
    assert await response.json() == {"error": PROBE_FAILED, "code": 422}
    mine = await node.client.get(STREAMS, params={"mine": "true"}, headers=headers)
    assert (await mine.json())["total"] == 0 and node.relay.calls == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shoutcast_url": "ftp://dj.example.com"}, "must be an http or https URL"),
        ({"shoutcast_url": "http://:8000"}, "must include a valid host name"),
        ({"shoutcast_url": "http://dj.example.com/?pass=x"}, "must not have a query string"),
        ({"mount": "live"}, "Field 'mount' must start with '/'."),
        ({"mount": "/live stream"}, "Field 'mount' must not contain spaces."),
        ({"mount": "/../admin"}, "Field 'mount' must not contain '..'."),
        ({"visibility": "friends"}, "Field 'visibility' must be 'public' or 'private'."),
        ({"name": MISSING}, "Field 'name' is required."),
        ({"stream_key": ""}, "Field 'stream_key' must be 1 to 256 characters long."),
        ({"monetization_enabled": "yes"}, "Field 'monetization_enabled' must be true or false."),
        ({"owner_id": str(uuid.uuid4())}, "Field 'owner_id' is not a recognised field."),
    ],
)
async def test_invalid_registration_is_400_before_any_source_check(
    node, fake_servers, change, message
):
    site = await fake_servers(NotAStreamServer)
    body = {k: v for k, v in {**stream_body(site), **change}.items() if v is not MISSING}
    _, headers = await user_headers(node.client, "dj")
    response = await node.client.post(STREAMS, json=body, headers=headers)
    assert response.status == 400
    assert message in (await response.json())["error"]
    assert site.requests == 0


async def test_only_signed_in_djs_register(node, source):
    _, listener = await user_headers(node.client, "listener")
    refused = await node.client.post(STREAMS, json=stream_body(source), headers=listener)
    assert refused.status == 403
    assert (await refused.json())["error"] == "Your token lacks the 'streams:write' scope"
    assert (await node.client.post(STREAMS, json=stream_body(source))).status == 401


async def test_patch_reports_the_fields_in_request_order(node, source):
    _, headers = await user_headers(node.client, "dj")
    stream_id = await register_stream(node.client, headers, source)
    change = {"visibility": "private", "name": "Weekend DJ Set", "genre": None}
    response = await node.client.patch(f"{STREAMS}/{stream_id}", json=change, headers=headers)
    assert response.status == 200
    assert await response.json() == {
        "stream_id": stream_id,
        "updated_fields": ["visibility", "name", "genre"],
    }
    detail = await (await node.client.get(f"{STREAMS}/{stream_id}", headers=headers)).json()
    assert (detail["visibility"], detail["name"], detail["genre"]) == (
        "private",
        "Weekend DJ Set",
        None,
    )
    assert detail["description"] == "Weekly house mix"


async def test_disabling_stops_the_relay_and_enabling_starts_it(node, source):
    _, headers = await user_headers(node.client, "dj")
    stream_id = await register_stream(node.client, headers, source)
    url, row_id = f"{STREAMS}/{stream_id}", uuid.UUID(stream_id)

    off = await node.client.patch(url, json={"enabled": False}, headers=headers)
    assert (await off.json())["updated_fields"] == ["enabled"]
    assert node.relay.calls[-1] == ("stop", row_id)
    assert (await node.client.get(url)).status == 404  # hidden from everyone else
    assert (await (await node.client.get(url, headers=headers)).json())["enabled"] is False
    assert await node.client.app[STREAMS_SERVICE].source_for(row_id) is None

    await node.client.patch(url, json={"enabled": True, "name": "Back"}, headers=headers)
    assert node.relay.calls[-1] == ("ensure", row_id)
    assert node.relay.sources[row_id].name == "Back"
    assert (await node.client.get(url)).status == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Nothing to update: send at least one of name, genre, description, visibility, "),
        ({"stream_key": "new"}, "Field 'stream_key' is not a recognised field."),
        ({"visibility": "friends"}, "Field 'visibility' must be 'public' or 'private'."),
        ({"name": None}, "Field 'name' must not be null."),
        ({"enabled": "false"}, "Field 'enabled' must be true or false."),
    ],
)
async def test_invalid_patch_is_400(node, source, body, message):
    _, headers = await user_headers(node.client, "dj")
    stream_id = await register_stream(node.client, headers, source)
    response = await node.client.patch(f"{STREAMS}/{stream_id}", json=body, headers=headers)
    assert response.status == 400
    assert (await response.json())["error"].startswith(message)


async def test_only_the_owner_or_an_admin_changes_or_deletes(node, source):
    _, owner = await user_headers(node.client, "dj")
    _, other = await user_headers(node.client, "dj")
    _, admin = await user_headers(node.client, "admin")
    stream_id = await register_stream(node.client, owner, source)
    url = f"{STREAMS}/{stream_id}"

    for response in (
        await node.client.patch(url, json={"name": "Mine now"}, headers=other),
        await node.client.delete(url, headers=other),
    ):
        assert response.status == 403
        body = await response.json()
        assert body == {"error": "Only the stream's owner or an admin can do this", "code": 403}
    assert (await node.client.patch(url, json={"name": "Fixed"}, headers=admin)).status == 200
    assert (await node.client.delete(url, headers=admin)).status == 204
    for missing in (url, f"{STREAMS}/{uuid.uuid4()}", f"{STREAMS}/not-a-uuid"):
        assert (await node.client.patch(missing, json={"name": "x"}, headers=owner)).status == 404
        assert (await node.client.delete(missing, headers=owner)).status == 404
    assert (await node.client.patch(url, json={"name": "x"})).status == 401


async def test_delete_is_soft_and_stops_the_relay(node, source):
    _, headers = await user_headers(node.client, "dj")
    stream_id = await register_stream(node.client, headers, source)
    row_id = uuid.UUID(stream_id)
    response = await node.client.delete(f"{STREAMS}/{stream_id}", headers=headers)
    assert response.status == 204 and await response.read() == b""
    assert node.relay.calls[-1] == ("stop", row_id)
    deleted_at = await node.client.app[POOL].fetchval(
        "SELECT deleted_at FROM streams WHERE stream_id = $1", row_id
    )
    assert deleted_at == node.clock.return_value
    got = await node.client.get(f"{STREAMS}/{stream_id}", headers=headers)
    assert await got.json() == {"error": "Stream not found", "code": 404}


async def test_directory_lists_public_live_streams_newest_first(
    make_client, make_settings, test_secrets, make_database, source
):
    node = await start_node(
        make_client, make_settings, test_secrets, await fresh_database(make_database)
    )
    _, dj = await user_headers(node.client, "dj")
    _, other = await user_headers(node.client, "dj")
    ids = {}
    for name, changes in [
        ("old", {}),
        ("private", {"visibility": "private"}),
        ("disabled", {}),
        ("deleted", {}),
        ("new", {"monetization_enabled": True}),
    ]:
        node.advance(seconds=1)
        ids[name] = await register_stream(node.client, dj, source, name=name, **changes)
    await node.client.patch(f"{STREAMS}/{ids['disabled']}", json={"enabled": False}, headers=dj)
    await node.client.delete(f"{STREAMS}/{ids['deleted']}", headers=dj)
    node.relay.snapshots[uuid.UUID(ids["new"])] = RelaySnapshot(True, None, 128, 7, None, None)

    async def names(headers=None, **params):
        response = await node.client.get(STREAMS, params=params, headers=headers or {})
        assert response.status == 200
        page = await response.json()
        return [s["name"] for s in page["streams"]], page["total"], page["streams"]

    anonymous, total, streams = await names()
    assert anonymous == ["new", "old"] and total == 2
    assert streams[0]["listeners"] == 7 and streams[1]["listeners"] == 0
    new = ids["new"]
    assert streams[0]["live_mp3_url"] == f"{PUBLIC_URL}/v1/streams/{new}/live.mp3"
    assert streams[0]["live_hls_url"] == f"{PUBLIC_URL}/v1/streams/{new}/live.m3u8"
    assert streams[0]["monetization_enabled"] is True and "stream_key" not in streams[0]
    assert (await names(other))[0] == ["new", "old"]
    assert (await names(dj))[0] == ["new", "private", "old"]
    mine = await names(dj, mine="true", per_page="2", page="2")
    assert mine[0] == ["private", "old"] and mine[1] == 4
    assert (await names(dj, per_page="1", page="2"))[0] == ["private"]
    assert (await node.client.get(STREAMS, params={"mine": "true"})).status == 401
    assert (await node.client.get(STREAMS, params={"per_page": "101"})).status == 400

    sources = await node.client.app[STREAMS_SERVICE].enabled_sources()
    assert [s.name for s in sources] == ["old", "private", "new"]


async def test_empty_lists_say_what_to_do(
    make_client, make_settings, test_secrets, make_database, source
):
    node = await start_node(
        make_client, make_settings, test_secrets, await fresh_database(make_database)
    )
    _, dj = await user_headers(node.client, "dj")

    async def page(**params):
        response = await node.client.get(STREAMS, params=params, headers=dj)
        assert response.status == 200
        return await response.json()

    directory, mine = await page(), await page(mine="true")
    assert (directory["streams"], directory["total"]) == ([], 0)
    assert (
        directory["message"]
        == "No streams are live right now. DJs register one with POST /v1/streams."
    )
    # A DJ's own list is not "the directory": it says what the DJ can do about it.
    assert (mine["streams"], mine["total"]) == ([], 0)
    assert mine["message"] == (
        "You have not registered any streams yet. Register one with POST /v1/streams."
    )
    # Once there is one, no message.
    await register_stream(node.client, dj, source, visibility="private")
    assert (await page(mine="true"))["message"] is None


async def test_ad_markers_are_replaced_and_come_back_sorted(node, source):
    _, headers = await user_headers(node.client, "dj")
    stream_id = await register_stream(node.client, headers, source)
    url = f"{STREAMS}/{stream_id}/ads"
    pre = {"position_seconds": 300, "duration_seconds": 30, "ad_type": "pre-roll"}
    mid = {"position_seconds": 1800, "duration_seconds": 60, "ad_type": "mid-roll"}

    response = await node.client.post(url, json={"ad_markers": [mid, pre]}, headers=headers)
    assert response.status == 200
    assert await response.json() == {"stream_id": stream_id, "ad_markers": [pre, mid]}
    assert (await (await node.client.get(url, headers=headers)).json())["ad_markers"] == [pre, mid]

    post = {"position_seconds": 3600, "duration_seconds": 15, "ad_type": "post-roll"}
    await node.client.post(url, json={"ad_markers": [post]}, headers=headers)
    service = node.client.app[STREAMS_SERVICE]
    assert await service.ad_markers(uuid.UUID(stream_id)) == [AdMarker(**post)]


@pytest.mark.parametrize(
    ("markers", "message"),
    [
        ([], "Field 'ad_markers' must contain at least 1 item."),
        ([{"position_seconds": 0, "duration_seconds": 1, "ad_type": "pre-roll"}] * 101, "at most"),
        ([{"position_seconds": -1, "duration_seconds": 30, "ad_type": "pre-roll"}], "at least 0"),
        ([{"position_seconds": 0, "duration_seconds": 0, "ad_type": "pre-roll"}], "greater than 0"),
        ([{"position_seconds": 0, "duration_seconds": 30, "ad_type": "banner"}], "must be 'pre-"),
        ([{"position_seconds": 0, "ad_type": "pre-roll"}], "duration_seconds' is required"),
    ],
)
async def test_invalid_ad_markers_are_400_and_keep_the_stored_ones(node, source, markers, message):
    _, headers = await user_headers(node.client, "dj")
    stream_id = await register_stream(node.client, headers, source)
    url = f"{STREAMS}/{stream_id}/ads"
    kept = [{"position_seconds": 10, "duration_seconds": 30, "ad_type": "pre-roll"}]
    await node.client.post(url, json={"ad_markers": kept}, headers=headers)

    response = await node.client.post(url, json={"ad_markers": markers}, headers=headers)
    assert response.status == 400 and message in (await response.json())["error"]
    assert (await (await node.client.get(url, headers=headers)).json())["ad_markers"] == kept


async def test_only_the_owner_or_an_admin_sets_ad_markers(node, source):
    _, owner = await user_headers(node.client, "dj")
    stream_id = await register_stream(node.client, owner, source)
    url = f"{STREAMS}/{stream_id}/ads"
    body = {"ad_markers": [{"position_seconds": 0, "duration_seconds": 30, "ad_type": "pre-roll"}]}
    for role in ("dj", "listener"):
        _, headers = await user_headers(node.client, role)
        assert (await node.client.post(url, json=body, headers=headers)).status == 403
        assert (await node.client.get(url, headers=headers)).status == 403
    _, admin = await user_headers(node.client, "admin")
    assert (await node.client.post(url, json=body, headers=admin)).status == 200
    assert (await node.client.post(url, json=body)).status == 401
    unknown = f"{STREAMS}/{uuid.uuid4()}/ads"
    assert (await node.client.post(unknown, json=body, headers=owner)).status == 404
