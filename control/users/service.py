"""The caller's own account, and the admins' management of every account (backlog US-1.4,
issue 14): list, change status, role and name, delete; each change is audited."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from control.accounts import AccountGate, sign_out_everywhere
from control.auth.passwords import PasswordHasher
from control.auth.service import user_out
from control.schemas import PageQuery
from control.security import Principal
from control.users import queries
from control.users.schemas import (
    AdminUserUpdate,
    AuditEntry,
    AuditList,
    UserList,
    UserOut,
    UserUpdate,
)
from mediaserver.clock import Clock, utcnow
from mediaserver.db import Connection
from mediaserver.errors import Conflict, Forbidden, NotFound, Unauthenticated

log = logging.getLogger(__name__)

#: Called with a user id once a change to the account has committed.
AccountHook = Callable[[uuid.UUID], Awaitable[None]]
Hooks = list[AccountHook]  # (`list` is a method name inside the class)
LAST_ADMIN = "The last active admin cannot be disabled, demoted or deleted; promote another first"


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
        self._on_disabled: Hooks = []
        self._on_deleted: Hooks = []

    def on_disabled(self, hook: AccountHook) -> None:
        """`hook(user_id)` runs after an admin disables the account (streams go off air)."""
        self._on_disabled.append(hook)

    def on_deleted(self, hook: AccountHook) -> None:
        """`hook(user_id)` runs after the account is deleted: what it offered comes down."""
        self._on_deleted.append(hook)

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

    async def delete_me(self, principal: Principal, ip: str) -> None:
        """Delete the caller's account (see `delete`)."""
        await self.delete(principal, principal.user_id, ip, self_service=True)

    async def update(
        self, actor: Principal, user_id: uuid.UUID, body: AdminUserUpdate, ip: str
    ) -> UserOut:
        """An admin changes an account's status, role, name or upload plan. Disabling or a
        new role ends the account's sessions at once; disabling also takes its streams off
        air. The last active admin cannot be disabled or demoted (409)."""
        async with self._pool.acquire() as conn, conn.transaction():
            before = await queries.lock_by_id(conn, user_id)
            if before is None:
                raise NotFound("User not found")
            losing_admin = before.role == "admin" and before.active
            if losing_admin and (body.status == "disabled" or body.role not in (None, "admin")):
                await self._keep_an_admin(conn, user_id)
            after = await queries.admin_update(
                conn, user_id, body.status, body.role, body.name, body.upload_plan
            )
            assert after is not None  # locked above
            changes = {
                field: [old, new]
                for field, old, new in (
                    ("status", before.status, after.status),
                    ("role", before.role, after.role),
                    ("name", before.name, after.name),
                    ("upload_plan", before.upload_plan, after.upload_plan),
                )
                if old != new
            }
            if "status" in changes or "role" in changes:
                await sign_out_everywhere(conn, user_id, self._clock())
            if changes:
                await queries.audit(conn, actor.user_id, _action(changes), user_id, changes, ip)
        self._accounts.forget(user_id)
        if changes.get("status") == ["active", "disabled"]:
            await self._run(self._on_disabled, user_id)
        return user_out(after)

    async def delete(
        self, actor: Principal, user_id: uuid.UUID, ip: str, *, self_service: bool = False
    ) -> None:
        """Soft delete and anonymise: the row stays (ownership, history) without the
        person's email, name or password; every session ends; what the account offered
        comes down with it (the `on_deleted` hooks: streams, podcasts, plans). An admin
        account can go only while another active admin remains."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await queries.lock_by_id(conn, user_id)
            if row is None:
                if self_service:
                    raise Unauthenticated("This account no longer exists")
                raise NotFound("User not found")
            if row.role == "admin" and row.active:
                await self._keep_an_admin(conn, user_id)
            await queries.anonymise(conn, user_id)
            await sign_out_everywhere(conn, user_id, self._clock())
            details: dict[str, object] = {"role": row.role}
            await queries.audit(conn, actor.user_id, "user.deleted", user_id, details, ip)
        self._accounts.forget(user_id)
        await self._run(self._on_deleted, user_id)

    async def audit_log(self, page: PageQuery) -> AuditList:
        rows, total = await queries.audit_page(self._pool, page.per_page, page.offset)
        entries = [AuditEntry.model_validate(r, from_attributes=True) for r in rows]
        return AuditList(entries=entries, page=page.page, per_page=page.per_page, total=total)

    async def _keep_an_admin(self, conn: Connection, user_id: uuid.UUID) -> None:
        if await queries.other_active_admins(conn, user_id) == 0:
            raise Conflict(LAST_ADMIN)

    async def _run(self, hooks: Hooks, user_id: uuid.UUID) -> None:
        # The account change has committed; a hook that fails is logged, the next still runs.
        for hook in hooks:
            try:
                await hook(user_id)
            except Exception:  # the supervisor of the hooks: each area's own failure
                log.exception("account hook failed", extra={"user_id": str(user_id)})

    async def _current(self, principal: Principal) -> queries.UserRow:
        row = await queries.by_id(self._pool, principal.user_id)
        if row is None:
            raise Unauthenticated("This account no longer exists")
        return row


def _action(changes: dict[str, list[str]]) -> str:
    if "status" in changes:
        return "user.disabled" if changes["status"][1] == "disabled" else "user.enabled"
    if "role" in changes:
        return "user.role_changed"
    return "user.renamed" if "name" in changes else "user.plan_changed"


USERS = web.AppKey("users_service", UsersService)
