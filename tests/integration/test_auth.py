"""Accounts, tokens and their attacks, through HTTP on a real PostgreSQL (Epic 1, US-8.3)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import jwt
import pytest

from tests.accounts import PASSWORD, bearer, login, make_admin, register, unique_email, user_headers


async def post(client, path, body, headers=None):
    response = await client.post(path, json=body, headers=headers)
    return response.status, await response.json() if response.status != 204 else None


# --- registration -----------------------------------------------------------------------


async def test_register_defaults_to_dj_and_listener_may_be_chosen(client):
    assert (await register(client))["role"] == "dj"
    assert (await register(client, role="listener"))["role"] == "listener"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not-an-email", "Field 'email' must be a valid email address."),
        ("password", "short1A", "Field 'password' must be at least 8 characters"),
        ("password", "alllowercase1", "an uppercase letter"),
        ("password", "NoDigitsHere", "a number"),
        ("name", "", "Field 'name' must not be empty."),
        ("role", "admin", "Field 'role' must be 'dj' or 'listener'."),
    ],
)
async def test_register_rejects_invalid_fields_with_a_message(client, field, value, message):
    body = {"email": unique_email(), "password": PASSWORD, "name": "X", field: value}
    status, error = await post(client, "/v1/auth/register", body)
    assert status == 400
    assert error["code"] == 400 and message in error["error"]


async def test_register_missing_field_and_unknown_field(client):
    status, error = await post(client, "/v1/auth/register", {"email": unique_email(), "name": "X"})
    assert (status, error["error"]) == (400, "Field 'password' is required.")
    body = {"email": unique_email(), "password": PASSWORD, "name": "X", "is_admin": True}
    status, error = await post(client, "/v1/auth/register", body)
    assert (status, error["error"]) == (400, "Field 'is_admin' is not a recognised field.")


async def test_duplicate_email_is_409_whatever_the_letter_case(client):
    user = await register(client)
    body = {"email": user["email"].upper(), "password": PASSWORD, "name": "Again"}
    status, error = await post(client, "/v1/auth/register", body)
    assert status == 409 and error == {
        "error": "An account with this email already exists",
        "code": 409,
    }


async def test_concurrent_duplicate_registrations_create_one_account(client):
    body = {"email": unique_email(), "password": PASSWORD, "name": "Race"}
    results = await asyncio.gather(*(post(client, "/v1/auth/register", body) for _ in range(5)))
    assert sorted(status for status, _ in results) == [201, 409, 409, 409, 409]


async def test_password_is_stored_hashed(client):
    from mediaserver.app import POOL

    user = await register(client)
    stored = await client.app[POOL].fetchval(
        "SELECT password_hash FROM users WHERE user_id = $1", uuid.UUID(user["user_id"])
    )
    assert PASSWORD not in stored and stored.startswith("$argon2id$")


# --- login ------------------------------------------------------------------------------


async def test_login_token_claims(client, test_secrets):
    user = await register(client, role="listener")
    tokens = await login(client, user["email"].upper())
    claims = jwt.decode(
        tokens["access_token"],
        test_secrets.jwt_public_pem,
        algorithms=["RS256"],
        issuer="mediaserver",
    )
    assert claims["sub"] == user["user_id"] and claims["role"] == "listener"
    assert claims["email"] == user["email"]
    assert claims["exp"] - claims["iat"] == pytest.approx(86400) and claims["jti"]
    assert set(claims["scopes"]) == {
        "streams:read",
        "playlists:read",
        "podcasts:read",
        "monetization:write",
    }


async def test_wrong_password_and_unknown_email_are_the_same_401(client):
    user = await register(client)
    wrong = await post(client, "/v1/auth/login", {"email": user["email"], "password": "Wr0ngPass"})
    unknown = await post(client, "/v1/auth/login", {"email": unique_email(), "password": PASSWORD})
    assert wrong == unknown == (401, {"error": "Invalid email or password", "code": 401})


async def test_login_missing_fields_is_400(client):
    status, error = await post(client, "/v1/auth/login", {"email": "a@example.com"})
    assert (status, error["error"]) == (400, "Field 'password' is required.")


async def test_refresh_token_is_stored_hashed(client):
    from mediaserver.app import POOL

    user = await register(client)
    tokens = await login(client, user["email"])
    rows = await client.app[POOL].fetch(
        "SELECT token_hash, expires_at - created_at AS ttl FROM refresh_tokens WHERE user_id = $1",
        uuid.UUID(user["user_id"]),
    )
    assert len(rows) == 1
    assert tokens["refresh_token"].encode() not in bytes(rows[0]["token_hash"])
    assert abs(rows[0]["ttl"].total_seconds() - 30 * 86400) < 5


# --- refresh rotation and reuse detection -----------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(client):
    user = await register(client)
    first = await login(client, user["email"])
    status, second = await post(
        client, "/v1/auth/refresh", {"refresh_token": first["refresh_token"]}
    )
    assert status == 200
    # The first token was rotated away; presenting it again means it leaked.
    status, error = await post(
        client, "/v1/auth/refresh", {"refresh_token": first["refresh_token"]}
    )
    assert status == 401 and "already used" in error["error"]
    # ...so the legitimate holder of the newest token is signed out too.
    status, _ = await post(client, "/v1/auth/refresh", {"refresh_token": second["refresh_token"]})
    assert status == 401
    # Other sessions (another login) are a different family and keep working.
    other = await login(client, user["email"])
    status, _ = await post(client, "/v1/auth/refresh", {"refresh_token": other["refresh_token"]})
    assert status == 200


async def test_refresh_with_garbage_or_missing_token(client):
    assert (await post(client, "/v1/auth/refresh", {"refresh_token": "nope"}))[0] == 401
    status, error = await post(client, "/v1/auth/refresh", {})
    assert (status, error["error"]) == (400, "Field 'refresh_token' is required.")


async def test_expired_refresh_token_is_401(client):
    from mediaserver.app import POOL

    user = await register(client)
    tokens = await login(client, user["email"])
    await client.app[POOL].execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        uuid.UUID(user["user_id"]),
    )
    status, error = await post(
        client, "/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]}
    )
    assert status == 401 and "expired" in error["error"]


async def test_logout_revokes_the_family(client):
    user = await register(client)
    tokens = await login(client, user["email"])
    status, _ = await post(client, "/v1/auth/logout", {"refresh_token": tokens["refresh_token"]})
    assert status == 204
    assert (await post(client, "/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]}))[
        0
    ] == 401


# --- users ------------------------------------------------------------------------------


async def test_admin_lists_users_with_pagination(client):
    admin = await make_admin(client)
    for _ in range(3):
        await register(client)
    response = await client.get("/v1/users?page=1&per_page=2", headers=bearer(admin))
    assert response.status == 200
    body = await response.json()
    assert body["page"] == 1 and body["per_page"] == 2 and len(body["users"]) == 2
    assert body["total"] >= 4
    assert set(body["users"][0]) == {
        "user_id",
        "email",
        "name",
        "role",
        "created_at",
        "status",
        "email_verified",
        "upload_plan",
    }
    last = await (
        await client.get(f"/v1/users?page={body['total']}&per_page=1", headers=bearer(admin))
    ).json()
    assert len(last["users"]) == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=0", "Query parameter 'page' must be at least 1."),
        ("per_page=500", "Query parameter 'per_page' must be at most 100."),
        ("page=abc", "Query parameter 'page' must be an integer."),
        ("sort=name", "Query parameter 'sort' is not a recognised field."),
    ],
)
async def test_user_list_rejects_bad_pagination(client, query, message):
    admin = await make_admin(client)
    response = await client.get(f"/v1/users?{query}", headers=bearer(admin))
    assert response.status == 400
    assert (await response.json())["error"] == message


async def test_user_list_needs_admin(client):
    _, dj = await user_headers(client, "dj")
    response = await client.get("/v1/users", headers=dj)
    assert response.status == 403
    assert (await response.json())["error"] == "This action requires the 'admin' role"
    assert (await client.get("/v1/users")).status == 401


async def test_update_me_renames_and_changes_password(client):
    user, headers = await user_headers(client)
    response = await client.patch("/v1/users/me", json={"name": "New Name"}, headers=headers)
    assert response.status == 200 and (await response.json())["name"] == "New Name"

    wrong = await client.patch(
        "/v1/users/me",
        headers=headers,
        json={"current_password": "Wr0ngPass", "new_password": "N3wPassword"},
    )
    assert wrong.status == 403
    missing = await client.patch(
        "/v1/users/me", json={"new_password": "N3wPassword"}, headers=headers
    )
    assert missing.status == 400 and "current_password" in (await missing.json())["error"]
    weak = await client.patch(
        "/v1/users/me", headers=headers, json={"current_password": PASSWORD, "new_password": "weak"}
    )
    assert weak.status == 400

    ok = await client.patch(
        "/v1/users/me",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": "N3wPassword"},
    )
    assert ok.status == 200
    # The change signs every session out: the old refresh and access tokens stop working
    # (a leaked password's sessions end with it); the new password works at once.
    assert (await post(client, "/v1/auth/refresh", {"refresh_token": user["refresh_token"]}))[
        0
    ] == 401
    old = await client.get("/v1/users/me", headers=headers)
    assert (old.status, (await old.json())["error"]) == (
        401,
        "This access token was signed out; log in again",
    )
    fresh = await login(client, user["email"], "N3wPassword")
    assert (await client.get("/v1/users/me", headers=bearer(fresh))).status == 200


async def test_deleted_account_cannot_log_in_or_refresh(client):
    user, headers = await user_headers(client)
    response = await client.delete("/v1/users/me", headers=headers)
    assert response.status == 204
    status, _ = await post(client, "/v1/auth/login", {"email": user["email"], "password": PASSWORD})
    assert status == 401
    assert (await post(client, "/v1/auth/refresh", {"refresh_token": user["refresh_token"]}))[
        0
    ] == 401
    assert (await client.get("/v1/users/me", headers=headers)).status == 401
    # The access token issued before the deletion no longer opens any route.
    plan = {"name": "Gold", "price_cents": 500, "currency": "USD", "billing_interval": "monthly"}
    response = await client.post("/v1/monetization/plans", json=plan, headers=headers)
    assert (response.status, await response.json()) == (
        401,
        {"error": "This account no longer exists", "code": 401},
    )
    assert (await client.get("/v1/streams", headers=headers)).status == 401
    # The email is free again for a new account.
    await register(client, email=user["email"])


async def test_promoting_an_account_ends_the_sessions_of_its_old_password(client):
    from control.auth.service import AUTH

    user, headers = await user_headers(client)
    await client.app[AUTH].create_admin(user["email"], "N3wAdminPass", None)  # the CLI's call
    status, _ = await post(client, "/v1/auth/refresh", {"refresh_token": user["refresh_token"]})
    assert status == 401  # a leaked refresh token cannot mint admin tokens
    assert (await client.get("/v1/users/me", headers=headers)).status == 401
    admin = await login(client, user["email"], "N3wAdminPass")
    me = await client.get("/v1/users/me", headers=bearer(admin))
    assert (me.status, (await me.json())["role"]) == (200, "admin")


# --- token attacks ----------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user_id: str, role: str = "admin") -> dict:
    now = int(time.time())
    return {
        "iss": "mediaserver",
        "sub": user_id,
        "email": "x@example.com",
        "role": role,
        "scopes": ["streams:write"],
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
    }


async def _me_with(client, token: str) -> tuple[int, dict]:
    response = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    return response.status, await response.json()


async def test_alg_none_token_is_rejected(client):
    user = await register(client)
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(user['user_id']))}."
    assert await _me_with(client, token) == (401, {"error": "Invalid access token", "code": 401})


async def test_hs256_signed_with_the_public_key_is_rejected(client, test_secrets):
    import hashlib
    import hmac

    user = await register(client)
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(_claims(user['user_id']))}"
    mac = hmac.new(test_secrets.jwt_public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert (await _me_with(client, token))[0] == 401


async def test_expired_wrong_issuer_foreign_key_and_tampered_tokens(client, test_secrets):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    user = await register(client)
    key = test_secrets.jwt_private_pem
    expired = {**_claims(user["user_id"]), "iat": 1, "exp": 2}
    status, error = await _me_with(client, jwt.encode(expired, key, algorithm="RS256"))
    assert (status, error["error"]) == (401, "Access token has expired")
    wrong_iss = {**_claims(user["user_id"]), "iss": "someone-else"}
    assert (await _me_with(client, jwt.encode(wrong_iss, key, algorithm="RS256")))[0] == 401
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert (
        await _me_with(client, jwt.encode(_claims(user["user_id"]), foreign, algorithm="RS256"))
    )[0] == 401
    tokens = await login(client, user["email"])
    header, _payload, signature = tokens["access_token"].split(".")
    forged = _b64({**_claims(user["user_id"]), "role": "admin"})
    assert (await _me_with(client, f"{header}.{forged}.{signature}"))[0] == 401


async def test_malformed_authorization_headers(client):
    for value in ("Basic abc", "Bearer", "Bearer    ", "token"):
        response = await client.get("/v1/users/me", headers={"Authorization": value})
        assert response.status == 401, value
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_listener_lacks_write_scopes(client):
    user = await register(client, role="listener")
    tokens = await login(client, user["email"])
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert not any(
        scope.endswith(":write") and scope != "monetization:write" for scope in claims["scopes"]
    )
