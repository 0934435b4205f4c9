"""Password reset and email verification by mail (issue 14).

A request never sends mail itself: it queues a job (kind `RESET_MAIL` or `VERIFY_MAIL`,
subject the user) and answers. The job mints the token when it runs, so the queue never
holds a usable link: the token is 256 random bits, mailed once and stored as its SHA-256
hash (`account_tokens`). A retry after a failed delivery mints another; an undelivered one
is never known to anybody and expires.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import asyncpg
from aiohttp import web

from control.accounts import AccountGate, sign_out_everywhere
from control.auth import mails, queries
from control.auth.passwords import PasswordHasher
from control.throttle import Throttle
from control.users import queries as users
from mediaserver.clock import Clock, utcnow
from mediaserver.config import Settings
from mediaserver.db import Executor
from mediaserver.errors import InvalidInput
from mediaserver.jobs import Job, JobQueue
from mediaserver.mail import Mailer

log = logging.getLogger(__name__)

RESET_MAIL = "mail.password_reset"
VERIFY_MAIL = "mail.verify_email"
RESET = "password_reset"
VERIFY = "verify_email"
#: Delivery attempts of one mail (backoff doubles from JOB_BACKOFF_SECONDS, capped at 10 min).
MAIL_ATTEMPTS = 8
#: Where the links point: pages of the site that read `token` and call the API.
RESET_PATH = "/account/reset-password"
VERIFY_PATH = "/account/verify-email"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AccountMail:
    """Mails links that reset a password or verify an email, and honours them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        jobs: JobQueue,
        mailer: Mailer,
        hasher: PasswordHasher,
        throttle: Throttle,
        accounts: AccountGate,
        settings: Settings,
        clock: Clock = utcnow,
    ) -> None:
        self._pool = pool
        self._jobs = jobs
        self._mailer = mailer
        self._hasher = hasher
        self._throttle = throttle
        self._accounts = accounts
        self._settings = settings
        self._clock = clock
        jobs.register(RESET_MAIL, self._send_reset)
        jobs.register(VERIFY_MAIL, self._send_verification)

    async def queue_verification(self, conn: Executor, user_id: uuid.UUID) -> None:
        """Queue the verification mail, within the caller's transaction."""
        await self._jobs.enqueue(conn, VERIFY_MAIL, user_id, max_attempts=MAIL_ATTEMPTS)

    async def resend_verification(self, user_id: uuid.UUID, ip: str) -> None:
        """Another verification mail (nothing when the email is already verified)."""
        row = await users.by_id(self._pool, user_id)
        if row is None or row.email_verified_at is not None:
            return
        if await self._throttle.allow_account_mail(row.email, ip):
            await self.queue_verification(self._pool, user_id)

    async def request_reset(self, email: str, ip: str) -> None:
        """Queue a reset mail when `email` belongs to an active account. The caller learns
        nothing either way (202); beyond the per-email limit nothing is sent, beyond the
        per-address limit 429."""
        if not await self._throttle.allow_account_mail(email, ip):
            log.info("password reset not mailed: too many for this address recently")
            return
        row = await users.by_email(self._pool, email)
        if row is not None and row.active:
            await self._jobs.enqueue(
                self._pool, RESET_MAIL, row.user_id, max_attempts=MAIL_ATTEMPTS
            )

    async def confirm_reset(
        self, token: str, new_password: str, ip: str | None = None
    ) -> uuid.UUID:
        """Set the new password; every session of the account ends (refresh tokens revoked,
        access tokens issued before now refused) and every other reset link stops working.
        The mailbox was proven, so the email counts as verified too; the reset is audited
        with the address it came from. 400 for a link that is unknown, used or expired."""
        new_hash = await self._hasher.hash(new_password)
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await self._spend(conn, token, RESET, "password-reset")
            user = await users.lock_by_id(conn, stored.user_id)
            if user is None or user.email.lower() != stored.email.lower() or not user.active:
                raise InvalidInput("This password-reset link is no longer valid; ask for a new one")
            await users.set_password(conn, user.user_id, new_hash)
            await queries.use_user_tokens(conn, user.user_id, RESET, now)
            await users.mark_verified(conn, user.user_id, stored.email)
            await sign_out_everywhere(conn, user.user_id, now)
            await users.audit(conn, user.user_id, "user.password_reset", user.user_id, {}, ip)
        self._accounts.forget(user.user_id)
        return user.user_id

    async def verify_email(self, token: str) -> None:
        """Mark the account's email verified; 400 for a link that is unknown, used, expired
        or sent to an address the account no longer has."""
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await self._spend(conn, token, VERIFY, "verification")
            if not await users.mark_verified(conn, stored.user_id, stored.email):
                raise InvalidInput(
                    "This verification link was sent to an address the account no longer uses"
                )

    async def _spend(
        self, conn: Executor, token: str, purpose: str, what: str
    ) -> queries.AccountTokenRow:
        digest, now = _digest(token), self._clock()
        stored = await queries.lock_account_token(conn, digest, purpose)
        if stored is None:
            raise InvalidInput(f"This {what} link is not valid; check that it was copied whole")
        if stored.used_at is not None:
            raise InvalidInput(f"This {what} link was already used; ask for a new one")
        if stored.expires_at <= now:
            raise InvalidInput(f"This {what} link has expired; ask for a new one")
        await queries.use_account_token(conn, digest, now)
        return stored

    async def _send_reset(self, job: Job) -> None:
        ttl = self._settings.password_reset_ttl_minutes
        user = await users.by_id(self._pool, job.subject_id)
        if user is None or not user.active:
            return  # deleted or disabled since it was asked for
        link = await self._mint(user, RESET, timedelta(minutes=ttl), RESET_PATH)
        await self._mailer.send(mails.password_reset(user.email, user.name, link, ttl))

    async def _send_verification(self, job: Job) -> None:
        ttl = self._settings.email_verify_ttl_hours
        user = await users.by_id(self._pool, job.subject_id)
        if user is None or user.email_verified_at is not None:
            return
        link = await self._mint(user, VERIFY, timedelta(hours=ttl), VERIFY_PATH)
        await self._mailer.send(mails.verify_email(user.email, user.name, link, ttl))

    async def _mint(self, user: users.UserRow, purpose: str, ttl: timedelta, path: str) -> str:
        token = secrets.token_urlsafe(32)
        expires_at = self._clock() + ttl
        await queries.insert_account_token(
            self._pool, _digest(token), user.user_id, purpose, user.email, expires_at
        )
        return f"{self._settings.base_url}{path}?{urlencode({'token': token})}"


ACCOUNT_MAIL = web.AppKey("account_mail", AccountMail)
