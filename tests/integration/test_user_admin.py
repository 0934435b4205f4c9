"""Issue 14: admins manage accounts (disable, re-enable, role, name, delete), every change in
the audit log; disabling ends sessions and MP3 listens at once and takes streams off air."""

from __future__ import annotations

import pytest

from tests.accounts import PASSWORD, bearer, login, make_admin, register, user_headers
from tests.live import ended, read_for
from tests.livenode import eventually, start_live_node
from tests.sources import IcecastSource
from tests.streams import fresh_database, register_stream, start_node


@pytest.fixture
async def live_node(aiohttp_client, make_client, make_settings, test_secrets):
    async def start(**overrides):
        return await start_live_node(aiohttp_client, make_settings, test_secrets, **overrides)

    return start


async def patch_user(client, user_id: str, admin_headers, **body):
    return await client.patch(f"/v1/users/{user_id}", json=body, headers=admin_headers)


async def test_disabling_ends_sessions_listens_and_broadcasts_at_once(live_node, fake_servers):
    source = await fake_servers(IcecastSource)
    node = await live_node(listener_recheck_seconds=0.5, trust_forwarded_for=True)
    client = node.client
    admin = await make_admin(client)
    dj, dj_headers = await user_headers(client)
    private = await register_stream(client, dj_headers, source, visibility="private")
    abuser, abuser_headers = await user_headers(client, "listener")
    _, fan_headers = await user_headers(client, "listener")
    # Private streams are for signed-in listeners; both play it.
    listen = f"/v1/streams/{private}/live.mp3"

    async def playing(headers):
        response = await client.get(listen, headers=headers)
        return response if response.status == 200 else response.close()

    abusing = await eventually(lambda: playing(abuser_headers), timeout=20)
    fan = await eventually(lambda: playing(fan_headers), timeout=20)
    assert len(await read_for(abusing, 0.5)) > 1000

    as_admin = {**bearer(admin), "X-Forwarded-For": "198.51.100.23"}
    disabled = await patch_user(client, abuser["user_id"], as_admin, status="disabled")
    assert disabled.status == 200, await disabled.text()
    assert (await disabled.json())["status"] == "disabled"
    # At once: the access token, the refresh token and the password stop working, and the
    # account's MP3 listen ends at the next re-check while another listener plays on.
    assert (await client.get("/v1/users/me", headers=abuser_headers)).status == 401
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": abuser["refresh_token"]})
    assert refresh.status == 401
    relogin = await client.post(
        "/v1/auth/login", json={"email": abuser["email"], "password": PASSWORD}
    )
    assert relogin.status == 403 and "disabled" in (await relogin.json())["error"]
    assert await ended(abusing)
    assert len(await read_for(fan, 1.0)) > 5000

    # Disabling the DJ takes the stream off air: its listeners are cut, it leaves the
    # directory, and it stays off.
    assert (await patch_user(client, dj["user_id"], as_admin, status="disabled")).status == 200
    assert await ended(fan)
    directory = await (await client.get("/v1/streams?per_page=100", headers=fan_headers)).json()
    assert private not in [s["stream_id"] for s in directory["streams"]]
    detail = await client.get(f"/v1/streams/{private}", headers=bearer(admin))
    assert (await detail.json())["enabled"] is False

    # Re-enabled: the account signs in again; the sessions that were ended stay ended.
    enabled = await patch_user(client, abuser["user_id"], as_admin, status="active")
    assert enabled.status == 200
    assert (await client.get("/v1/users/me", headers=abuser_headers)).status == 401
    await login(client, abuser["email"])

    audit = await (await client.get("/v1/admin/audit?per_page=100", headers=bearer(admin))).json()
    mine = [e for e in audit["entries"] if e["target_id"] == abuser["user_id"]]
    assert [e["action"] for e in mine] == ["user.enabled", "user.disabled"]  # newest first
    assert mine[1]["actor_id"] == admin["user_id"] and mine[1]["ip"] == "198.51.100.23"
    assert mine[1]["details"] == {"status": ["active", "disabled"]}


async def test_roles_names_and_the_last_admin(
    make_client, make_settings, test_secrets, make_database
):
    node = await start_node(
        make_client, make_settings, test_secrets, await fresh_database(make_database)
    )
    client = node.client
    admin = await make_admin(client)
    dj, dj_headers = await user_headers(client)

    # Only admins manage accounts.
    assert (await patch_user(client, admin["user_id"], dj_headers, name="x")).status == 403
    assert (await client.get("/v1/admin/audit", headers=dj_headers)).status == 403

    renamed = await patch_user(client, dj["user_id"], bearer(admin), name="DJ Renamed")
    assert (await renamed.json())["name"] == "DJ Renamed"
    assert (await client.get("/v1/users/me", headers=dj_headers)).status == 200  # still in

    # A new role takes effect at once: tokens carry the role, so the sessions end.
    demoted = await patch_user(client, dj["user_id"], bearer(admin), role="listener")
    assert (await demoted.json())["role"] == "listener"
    assert (await client.get("/v1/users/me", headers=dj_headers)).status == 401
    relogged = bearer(await login(client, dj["email"]))
    assert (await (await client.get("/v1/users/me", headers=relogged)).json())["role"] == "listener"

    # The only admin cannot disable, demote or delete itself; with a second one it can.
    for change in ({"status": "disabled"}, {"role": "dj"}):
        refused = await patch_user(client, admin["user_id"], bearer(admin), **change)
        assert refused.status == 409 and "last active admin" in (await refused.json())["error"]
    assert (await client.delete("/v1/users/me", headers=bearer(admin))).status == 409
    second = await patch_user(client, dj["user_id"], bearer(admin), role="admin")
    assert second.status == 200
    assert (await patch_user(client, admin["user_id"], bearer(admin), role="dj")).status == 200

    unknown = await patch_user(client, "00000000-0000-0000-0000-000000000000", relogged, name="x")
    assert unknown.status in (401, 403)  # the promotion ended that session too
    other_admin = bearer(await login(client, dj["email"]))
    missing = await patch_user(
        client, "00000000-0000-0000-0000-000000000000", other_admin, name="x"
    )
    assert missing.status == 404
    empty = await patch_user(client, dj["user_id"], other_admin)
    assert empty.status == 400


async def test_admin_deletes_an_account_and_its_email_is_free_again(make_client):
    client = await make_client()
    admin = await make_admin(client)
    user = await register(client)
    headers = bearer(await login(client, user["email"]))
    deleted = await client.delete(f"/v1/users/{user['user_id']}", headers=bearer(admin))
    assert deleted.status == 204
    assert (await client.get("/v1/users/me", headers=headers)).status == 401
    again = await client.delete(f"/v1/users/{user['user_id']}", headers=bearer(admin))
    assert again.status == 404
    # Anonymised: the address can sign up again, and the admin list no longer shows it.
    await register(client, email=user["email"])
    audit = await (await client.get("/v1/admin/audit?per_page=100", headers=bearer(admin))).json()
    assert any(
        e["action"] == "user.deleted" and e["target_id"] == user["user_id"]
        for e in audit["entries"]
    )
