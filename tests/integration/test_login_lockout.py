"""Issue 14: login limits cannot be turned against an account's owner. Addresses come from
`X-Forwarded-For` (the test client is a trusted loopback proxy)."""

from __future__ import annotations

from tests.accounts import PASSWORD, register

WRONG = "Wr0ngPassword!"


async def attempt(client, email: str, password: str, ip: str) -> int:
    response = await client.post(
        "/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": ip},
    )
    return response.status


async def test_wrong_passwords_from_elsewhere_never_lock_the_owner_out(make_client):
    client = await make_client(
        trust_forwarded_for=True,
        rate_limit_login_per_email_per_minute=5,
        rate_limit_login_per_ip_per_minute=20,
        rate_limit_login_failures_per_email_per_hour=8,
    )
    email = (await register(client))["email"]

    # One address guessing: five wrong passwords, then it is refused, right password or not.
    attacker = "203.0.113.9"
    assert [await attempt(client, email, WRONG, attacker) for _ in range(5)] == [401] * 5
    assert await attempt(client, email, WRONG, attacker) == 429
    assert await attempt(client, email, PASSWORD, attacker) == 429
    # The owner, elsewhere, signs in.
    assert await attempt(client, email, PASSWORD, "198.51.100.7") == 200

    # Many addresses guessing spend the account's hourly allowance of wrong passwords...
    for n in range(3):
        assert await attempt(client, email, WRONG, f"203.0.113.{100 + n}") == 401
    # ...after which an address that failed here is refused even with the right password,
    assert await attempt(client, email, PASSWORD, "203.0.113.100") == 429
    # while an address with no failures for this account (the owner's) still gets in.
    assert await attempt(client, email, PASSWORD, "198.51.100.8") == 200
    assert await attempt(client, email, PASSWORD, "198.51.100.7") == 200
