"""Getting accounts and tokens the way a client does: register, log in, send `Bearer`."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp.test_utils import TestClient

PASSWORD = "Sup3rSecret!"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def register(client: TestClient, role: str = "dj", **fields: Any) -> dict[str, Any]:
    body = {"email": unique_email(role), "password": PASSWORD, "name": f"Test {role}", "role": role}
    body.update(fields)
    response = await client.post("/v1/auth/register", json=body)
    assert response.status == 201, await response.text()
    return {**(await response.json()), "password": body["password"]}


async def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def make_admin(client: TestClient) -> dict[str, Any]:
    """Registers an account, promotes it the way `mediaserver create-admin` does, logs in."""
    from control.auth.service import AUTH

    email = unique_email("admin")
    user = await client.app[AUTH].create_admin(email, PASSWORD, "Admin")
    tokens = await login(client, email)
    return {"user_id": str(user.user_id), "email": email, **tokens}


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def user_headers(
    client: TestClient, role: str = "dj"
) -> tuple[dict[str, Any], dict[str, str]]:
    """A new account of `role` and the headers to call the API as it."""
    if role == "admin":
        admin = await make_admin(client)
        return admin, bearer(admin)
    user = await register(client, role)
    tokens = await login(client, user["email"])
    return {**user, **tokens}, bearer(tokens)


async def sign_out_everywhere(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    """Change the account's password, which signs it out everywhere; the headers of a
    login with the new one."""
    me = await (await client.get("/v1/users/me", headers=headers)).json()
    body = {"current_password": PASSWORD, "new_password": "N3wPassword!"}
    changed = await client.patch("/v1/users/me", json=body, headers=headers)
    assert changed.status == 200, await changed.text()
    assert (await client.get("/v1/users/me", headers=headers)).status == 401
    return bearer(await login(client, me["email"], "N3wPassword!"))
