"""Registration, login and refresh-token rotation (backlog US-1.1 – US-1.3)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from control.accounts import sign_out_everywhere
from control.auth import queries
from control.auth.passwords import PasswordHasher
from control.auth.schemas import LoginIn, RegisterIn, TokenPair
from control.security import TokenCodec
from control.throttle import Throttle
from control.users import queries as users
from control.users.schemas import UserOut
from mediaserver.clock import Clock, utcnow
from mediaserver.db import Connection
from mediaserver.errors import Conflict, Forbidden, Unauthenticated

if TYPE_CHECKING:
    from control.auth.recovery import AccountMail

DISABLED = "This account is disabled; contact the operator of this server"


def _digest(token: str) -> bytes:
    # Refresh tokens are 256-bit random strings, so a fast hash is enough at rest.
    return hashlib.sha256(token.encode()).digest()


def user_out(row: users.UserRow) -> UserOut:
    return UserOut(
        user_id=row.user_id,
        email=row.email,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        status="active" if row.active else "disabled",
        email_verified=row.email_verified_at is not None,
        upload_plan=row.upload_plan,
    )


class AuthService:
    """Accounts and tokens. Access tokens are stateless JWTs; refresh tokens live hashed in
    PostgreSQL and rotate on every use."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        hasher: PasswordHasher,
        codec: TokenCodec,
        throttle: Throttle,
        refresh_ttl: timedelta,
        clock: Clock = utcnow,
        mail: AccountMail | None = None,
    ) -> None:
        self._pool = pool
        self._hasher = hasher
        self._codec = codec
        self._throttle = throttle
        self._refresh_ttl = refresh_ttl
        self._clock = clock
        self._mail = mail

    async def register(self, body: RegisterIn) -> UserOut:
        """Create a DJ or listener account; 409 when the email is taken (any letter case).
        The verification mail is queued with the account, in one transaction."""
        password_hash = await self._hasher.hash(body.password)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                row = await users.insert(conn, body.email, body.name, password_hash, body.role)
                if self._mail is not None:
                    await self._mail.queue_verification(conn, row.user_id)
        except asyncpg.UniqueViolationError:
            raise Conflict("An account with this email already exists") from None
        return user_out(row)

    async def login(self, body: LoginIn, ip: str) -> TokenPair:
        """Check the password and start a new refresh-token family. A disabled account is
        told so only once the password is right."""
        await self._throttle.check_login(body.email, ip)
        row = await users.by_email(self._pool, body.email)
        valid = await self._hasher.verify(row.password_hash if row else None, body.password)
        if row is None or not valid:
            await self._throttle.login_failed(body.email, ip)
            raise Unauthenticated("Invalid email or password")
        if not row.active:
            raise Forbidden(DISABLED)
        return await self._issue(row.user_id, row.email, row.role, family_id=uuid.uuid4())

    async def refresh(self, token: str) -> TokenPair:
        """Rotate: the presented token is revoked and a new one issued in the same family.
        A token presented twice means it was stolen; the whole family is revoked."""
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await queries.lock_by_hash(conn, _digest(token))
            if stored is None:
                raise Unauthenticated("Invalid refresh token")
            if stored.revoked_at is not None:
                await queries.revoke_family(conn, stored.family_id, now)
                reused = True
            else:
                reused = False
                if stored.expires_at <= now:
                    raise Unauthenticated("Refresh token has expired; sign in again")
                user = await users.by_id(conn, stored.user_id)
                if user is None:
                    raise Unauthenticated("This account no longer exists")
                if not user.active:
                    raise Unauthenticated(DISABLED)
                await queries.revoke(conn, stored.token_id, now)
                pair = await self._issue(
                    user.user_id, user.email, user.role, stored.family_id, conn
                )
        if reused:
            raise Unauthenticated(
                "Refresh token was already used; every session it belongs to is now signed out"
            )
        return pair

    async def logout(self, token: str) -> None:
        """Revoke the token's whole family. Unknown tokens are ignored (RFC 7009 §2.2)."""
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await queries.lock_by_hash(conn, _digest(token))
            if stored is not None:
                await queries.revoke_family(conn, stored.family_id, self._clock())

    async def find_by_email(self, email: str) -> uuid.UUID | None:
        """The id of the live account with this email, if any."""
        row = await users.by_email(self._pool, email)
        return row.user_id if row is not None else None

    async def create_admin(self, email: str, password: str, name: str | None) -> UserOut:
        """Create an admin, or promote the existing account with that email (and reset its
        password to the one given)."""
        password_hash = await self._hasher.hash(password)
        async with self._pool.acquire() as conn, conn.transaction():
            existing = await users.by_email(conn, email)
            if existing is None:
                row = await users.insert(conn, email, name or "Admin", password_hash, "admin")
                action, details = "user.admin_created", {}
            else:
                action, details = "user.promoted", {"role": [existing.role, "admin"]}
                row = await users.set_role(conn, existing.user_id, "admin", password_hash, name)
                # The password was reset: sessions opened with the old one end, so a leaked
                # refresh token cannot mint tokens of the promoted account.
                await sign_out_everywhere(conn, existing.user_id, self._clock())
            # By `mediaserver create-admin`: no account acted, from no address. The operator
            # vouches for the address (REQUIRE_VERIFIED_EMAIL must not lock admins out).
            await users.audit(conn, None, action, row.user_id, details, None)
            await users.mark_verified(conn, row.user_id, row.email)
            verified = await users.by_id(conn, row.user_id)
        assert verified is not None
        return user_out(verified)

    async def _issue(
        self,
        user_id: uuid.UUID,
        email: str,
        role: str,
        family_id: uuid.UUID,
        conn: Connection | None = None,
    ) -> TokenPair:
        refresh_token = secrets.token_urlsafe(32)
        expires_at = self._clock() + self._refresh_ttl
        await queries.insert(
            conn or self._pool, user_id, family_id, _digest(refresh_token), expires_at
        )
        return TokenPair(
            access_token=self._codec.issue(user_id, email, role),
            refresh_token=refresh_token,
            expires_in=self._codec.ttl_seconds,
        )


AUTH = web.AppKey("auth_service", AuthService)
