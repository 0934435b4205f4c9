"""Issue 14: password reset and email verification by real mail, received by a real SMTP
server on loopback (aiosmtpd), through the node's job queue and real PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mediaserver.app import build_app
from tests.accounts import PASSWORD, bearer, login, make_admin, register
from tests.clock import Clock
from tests.livenode import eventually
from tests.mailbox import Mailbox, free_port, self_signed

NEW_PASSWORD = "Br4ndNewPass!"
RESET_SUBJECT = "Reset your password"
VERIFY_SUBJECT = "Confirm your email address"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(free_port(), credentials=("mailer", "p@ss word"))
    box.start()
    yield box
    box.stop()


def smtp_settings(box: Mailbox, **more: object) -> dict[str, object]:
    # The password travels percent-encoded in the URL, as an operator writes it.
    url = box.url().replace("p@ss word", "p%40ss%20word")
    return {
        "smtp_url": url,
        "mail_from": "Radio <radio@example.com>",
        "public_url": "https://radio.example.com",
        "job_backoff_seconds": 0.2,
        **more,
    }


async def test_forgotten_password_back_in_by_mail_with_old_sessions_gone(make_client, mailbox):
    client = await make_client(**smtp_settings(mailbox))
    user = await register(client, name="DJ <Forgetful>")
    old = await login(client, user["email"])

    answered = await client.post("/v1/auth/password-reset", json={"email": user["email"]})
    unknown = await client.post("/v1/auth/password-reset", json={"email": "nobody@example.com"})
    # The same answer whether or not the address has an account.
    assert answered.status == unknown.status == 202
    assert await answered.json() == await unknown.json()

    mail = await mailbox.wait_for(user["email"], RESET_SUBJECT)
    assert mail.login == "mailer"  # AUTH with the URL's (percent-decoded) user and password
    assert mail.message["From"] == "Radio <radio@example.com>"
    assert mail.message["To"] == user["email"]
    assert mail.message["Message-ID"] and mail.message["Date"]
    assert mail.message.get_content_type() == "multipart/alternative"
    link = mail.link()
    assert link.startswith("https://radio.example.com/account/reset-password?token=")
    assert "30 minutes" in mail.part("plain") and "DJ <Forgetful>" in mail.part("plain")
    html = mail.part("html")
    assert f'href="{link}"' in html and "DJ &lt;Forgetful&gt;" in html  # escaped, linked
    assert not [m for m in mailbox.received if "nobody@example.com" in m.rcpt_tos]

    confirm = {"token": mail.token(), "new_password": NEW_PASSWORD}
    done = await client.post("/v1/auth/password-reset/confirm", json=confirm)
    assert done.status == 204, await done.text()

    # Every earlier session is over; the old password is gone; the new one works.
    assert (await client.get("/v1/users/me", headers=bearer(old))).status == 401
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": old["refresh_token"]})
    assert refreshed.status == 401
    wrong = {"email": user["email"], "password": PASSWORD}
    assert (await client.post("/v1/auth/login", json=wrong)).status == 401
    new = await login(client, user["email"], NEW_PASSWORD)
    me = await (await client.get("/v1/users/me", headers=bearer(new))).json()
    assert me["email_verified"] is True  # the reset proved the mailbox

    again = await client.post("/v1/auth/password-reset/confirm", json=confirm)
    assert again.status == 400
    assert "already used" in (await again.json())["error"]
    forged = await client.post(
        "/v1/auth/password-reset/confirm", json={**confirm, "token": "not-a-token"}
    )
    assert forged.status == 400 and "not valid" in (await forged.json())["error"]

    # The operator sees it in the audit log, with where it came from.
    admin = bearer(await make_admin(client))
    audit = await (await client.get("/v1/admin/audit?per_page=100", headers=admin)).json()
    resets = [e for e in audit["entries"] if e["target_id"] == user["user_id"]]
    assert [(e["action"], e["actor_id"], e["ip"]) for e in resets] == [
        ("user.password_reset", user["user_id"], "127.0.0.1")
    ]


async def test_a_reset_link_expires(make_settings, make_client, test_secrets, mailbox):
    clock = Clock(datetime.now(UTC))
    app = build_app(make_settings(**smtp_settings(mailbox)), test_secrets, clock=clock)
    client = await make_client(app)
    user = await register(client)
    await client.post("/v1/auth/password-reset", json={"email": user["email"]})
    mail = await mailbox.wait_for(user["email"], RESET_SUBJECT)

    clock.now += timedelta(minutes=31)
    late = await client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": mail.token(), "new_password": NEW_PASSWORD},
    )
    assert late.status == 400
    assert "expired" in (await late.json())["error"]
    await login(client, user["email"])  # the password is unchanged


async def test_verification_mail_at_registration_and_the_verified_gate(make_client, mailbox):
    client = await make_client(**smtp_settings(mailbox, require_verified_email=True))
    user = await register(client)
    assert user["email_verified"] is False
    headers = bearer(await login(client, user["email"]))
    stream = {
        "name": "Gate",
        "shoutcast_url": "http://127.0.0.1:9/",
        "stream_key": "k",
        "mount": "/live",
    }
    refused = await client.post("/v1/streams", json=stream, headers=headers)
    assert refused.status == 403 and "Confirm your email" in (await refused.json())["error"]
    upload = await client.post("/v1/uploads/audio", data={"title": "x"}, headers=headers)
    assert upload.status == 403

    first = await mailbox.wait_for(user["email"], VERIFY_SUBJECT)
    resend = await client.post("/v1/users/me/email-verification", headers=headers)
    assert resend.status == 202

    async def second():
        mails = [m for m in mailbox.received if user["email"] in m.rcpt_tos]
        return mails[1] if len(mails) > 1 else None

    mail = await eventually(second)
    assert mail.token() != first.token()
    assert mail.link().startswith("https://radio.example.com/account/verify-email?token=")
    assert "<a href=" in mail.part("html")
    verified = await client.post("/v1/auth/verify-email", json={"token": mail.token()})
    assert verified.status == 204, await verified.text()
    me = await (await client.get("/v1/users/me", headers=headers)).json()
    assert me["email_verified"] is True
    # Past the gate: the request now fails on its own merits (the source is unreachable).
    after = await client.post("/v1/streams", json=stream, headers=headers)
    assert after.status not in (401, 403), await after.text()
    reused = await client.post("/v1/auth/verify-email", json={"token": mail.token()})
    assert reused.status == 400


async def test_mail_waits_out_an_smtp_outage_without_holding_the_request(make_client):
    """The SMTP server is down when the reset is asked for: 202 at once, and the job
    retries until the server is back."""
    box = Mailbox(free_port())
    client = await make_client(**smtp_settings(box))
    user = await register(client)
    answered = await client.post("/v1/auth/password-reset", json={"email": user["email"]})
    assert answered.status == 202
    box.start()
    try:
        mail = await box.wait_for(user["email"], RESET_SUBJECT)
        assert mail.token()
    finally:
        box.stop()


async def test_starttls_when_offered(make_client, tmp_path: Path, monkeypatch):
    """`smtp://` upgrades with STARTTLS when the server offers it (this one requires it, and
    AUTH only over TLS)."""
    context, cert_file = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the client trusts the test's CA
    box = Mailbox(free_port(), credentials=("mailer", "tls-only"))
    box.start(tls_context=context)
    try:
        client = await make_client(**{**smtp_settings(box), "smtp_url": box.url()})
        user = await register(client)
        mail = await box.wait_for(user["email"], VERIFY_SUBJECT)
        assert mail.login == "mailer"
    finally:
        box.stop()


async def test_without_smtp_the_mail_is_logged(make_client, caplog):
    caplog.set_level(logging.INFO, logger="mediaserver.mail")
    client = await make_client(job_backoff_seconds=0.2)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("no SMTP_URL" in m for m in warnings), warnings
    user = await register(client)
    assert (
        await client.post("/v1/auth/password-reset", json={"email": user["email"]})
    ).status == 202

    async def logged():
        for record in caplog.records:
            message = record.getMessage()
            if user["email"] in message and RESET_SUBJECT in message:
                return message
        return None

    message = await eventually(logged, timeout=20)
    assert "/account/reset-password?token=" in message


async def test_the_mailed_links_open_pages_that_work_without_a_front_end(make_client, mailbox):
    """A person clicks the links in a mail client: the node's own pages take it from there
    (a GET never spends the token: link scanners fetch links first)."""
    client = await make_client(**smtp_settings(mailbox))
    user = await register(client)
    verify = await mailbox.wait_for(user["email"], VERIFY_SUBJECT)
    path = verify.link().removeprefix("https://radio.example.com")
    page = await client.get(path)
    assert page.status == 200 and page.content_type == "text/html"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert f'value="{verify.token()}"' in await page.text()
    confirmed = await client.post(path.split("?")[0], data={"token": verify.token()})
    assert confirmed.status == 200 and "confirmed" in await confirmed.text()

    await client.post("/v1/auth/password-reset", json={"email": user["email"]})
    reset = await mailbox.wait_for(user["email"], RESET_SUBJECT)
    path = reset.link().removeprefix("https://radio.example.com")
    assert (await client.get(path)).status == 200
    form = path.split("?")[0]
    weak = await client.post(form, data={"token": reset.token(), "new_password": "short"})
    assert weak.status == 400 and f'value="{reset.token()}"' in await weak.text()  # try again
    done = await client.post(form, data={"token": reset.token(), "new_password": NEW_PASSWORD})
    assert done.status == 200 and "Password changed" in await done.text()
    await login(client, user["email"], NEW_PASSWORD)
    reused = await client.post(form, data={"token": reset.token(), "new_password": NEW_PASSWORD})
    assert reused.status == 400 and "already used" in await reused.text()


async def test_the_account_forms_refuse_what_no_browser_would_post(make_client):
    """Only the form's own encoding is read, within the body limits; anything else gets the
    page saying so (never a 500), and nothing is changed."""
    client = await make_client()
    for path in ("/account/reset-password", "/account/verify-email"):
        odd = await client.post(
            path, data=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}
        )
        assert odd.status == 400 and odd.content_type == "text/html"
        assert "application/x-www-form-urlencoded" in await odd.text()
        garbled = await client.post(
            path,
            data=b"token=%ff%fe",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert garbled.status == 400 and "not valid UTF-8" in await garbled.text()
        unknown = await client.post(path, data={"token": "a\x00b", "new_password": "Passw0rd!x"})
        assert unknown.status == 400 and "This link does not work" in await unknown.text()
