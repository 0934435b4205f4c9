"""US-1.1 – 1.4 and US-9.5.1 through the HTTP API on a real PostgreSQL."""

from __future__ import annotations

from tests.accounts import bearer, login, register


async def test_register_login_refresh_then_call_protected_route(client):
    user = await register(client, name="DJ Example")
    assert user["role"] == "dj" and user["name"] == "DJ Example"
    assert set(user) >= {"user_id", "email", "name", "role", "created_at"}
    tokens = await login(client, user["email"])
    assert tokens["expires_in"] == 86400 and tokens["token_type"] == "Bearer"

    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status == 200
    new = await refreshed.json()
    assert new["access_token"] and new["refresh_token"] != tokens["refresh_token"]

    me = await client.get("/v1/users/me", headers=bearer(new))
    assert me.status == 200
    assert (await me.json())["email"] == user["email"]
