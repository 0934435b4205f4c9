"""The caller's own account and the admin's user list (backlog US-1.4)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from control.accounts import AccountGate, sign_out_everywhere
from control.auth.passwords import PasswordHasher
from control.auth.service import user_out
from control.schemas import PageQuery
from control.security import Principal
from control.users import queries
from control.users.schemas import UserList, UserOut, UserUpdate
from mediaserver.clock import Clock, utcnow
from mediaserver.errors import Forbidden, Unauthenticated


class UsersService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        hasher: PasswordHasher,
        accounts: AccountGate,
        clock: Clock = utcnow,
    ) -> None:
        self._pool = pool
        self._hasher = hasher
        self._accounts = accounts
        self._clock = clock

    async def list(self, page: PageQuery) -> UserList:
        rows, total = await queries.page(self._pool, page.per_page, page.offset)
        return UserList(
            users=[user_out(r) for r in rows], page=page.page, per_page=page.per_page, total=total
        )

    async def me(self, principal: Principal) -> UserOut:
        return user_out(await self._current(principal))

    async def update_me(self, principal: Principal, body: UserUpdate) -> UserOut:
        """Rename, and/or change the password (the current one must be given and right).
        A password change signs out every session, this one included: refresh tokens are
        revoked and access tokens issued before now are refused; log in with the new one."""
        current = await self._current(principal)
        new_hash = None
        if body.new_password is not None:
            if not await self._hasher.verify(current.password_hash, body.current_password or ""):
                raise Forbidden("Current password is incorrect")
            new_hash = await self._hasher.hash(body.new_password)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await queries.update(conn, principal.user_id, body.name, new_hash)
            if row is None:
                raise Unauthenticated("This account no longer exists")
            if new_hash is not None:
                await sign_out_everywhere(conn, principal.user_id, self._clock())
        self._accounts.forget(principal.user_id)
        return user_out(row)

    async def delete_me(self, principal: Principal) -> None:
        """Soft delete: the row stays (history, ownership); login, refresh and the access
        tokens already issued stop working."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await queries.soft_delete(conn, principal.user_id):
                raise Unauthenticated("This account no longer exists")
            await sign_out_everywhere(conn, principal.user_id, self._clock())
        self._accounts.forget(principal.user_id)

    async def _current(self, principal: Principal) -> queries.UserRow:
        row = await queries.by_id(self._pool, principal.user_id)
        if row is None:
            raise Unauthenticated("This account no longer exists")
        return row


USERS = web.AppKey("users_service", UsersService)
