"""`/v1/users*`."""

from __future__ import annotations

from aiohttp import web

from control.api import Api, path_uuid
from control.forwarded import CLIENT_ADDRESS
from control.schemas import PageQuery
from control.security import principal_of
from control.users.schemas import (
    NOTHING_TO_UPDATE,
    AdminUserUpdate,
    AuditList,
    UserList,
    UserOut,
    UserUpdate,
)
from control.users.service import LAST_ADMIN, USERS

api = Api()


@api.get(
    "/v1/users",
    summary="List all users (admin)",
    tag="users",
    query=PageQuery,
    response=UserList,
    role="admin",
    errors=(400, 401, 403, 429),
)
async def list_users(request: web.Request, query: PageQuery) -> UserList:
    return await request.app[USERS].list(query)


@api.get(
    "/v1/users/me", summary="The caller's account", tag="users", response=UserOut, errors=(401, 429)
)
async def get_me(request: web.Request) -> UserOut:
    return await request.app[USERS].me(principal_of(request))


@api.patch(
    "/v1/users/me",
    summary="Rename or change password",
    tag="users",
    body=UserUpdate,
    response=UserOut,
    errors=(400, 401, 403, 429),
    examples={403: "Current password is incorrect"},
    body_example={"name": "DJ Example Live"},
)
async def update_me(request: web.Request, body: UserUpdate) -> UserOut:
    return await request.app[USERS].update_me(principal_of(request), body)


@api.delete(
    "/v1/users/me",
    summary="Delete the caller's account",
    description="Soft delete and anonymise: every session ends, the account's streams stop "
    "and leave the directory, its podcasts' feeds and media answer 410, its plans can no "
    "longer be bought and subscriptions to them end. 409 for the last active admin.",
    tag="users",
    status=204,
    errors=(401, 409, 429),
    examples={409: LAST_ADMIN},
)
async def delete_me(request: web.Request) -> None:
    ip = request.app[CLIENT_ADDRESS](request)
    await request.app[USERS].delete_me(principal_of(request), ip)


USER = "/v1/users/{user_id}"


@api.patch(
    USER,
    summary="Change an account's status, role, name or upload plan (admin)",
    description="`status: disabled` ends the account's sessions at once (refresh and access "
    "tokens refused, its MP3 listens of private streams cut) and takes its streams off air; "
    "`active` restores access, not the sessions. A new role ends the sessions too. The "
    "last active admin cannot be disabled or demoted (409). `upload_plan` (free, basic, pro, "
    "artist) applies to the next upload (`GET /v1/users/me/quota`). Audited.",
    tag="users",
    body=AdminUserUpdate,
    response=UserOut,
    role="admin",
    errors=(400, 401, 403, 404, 409, 429),
    examples={
        400: NOTHING_TO_UPDATE,
        404: "User not found",
        409: LAST_ADMIN,
    },
    body_example={"name": "DJ Example (renamed by an admin)"},
)
async def update_user(request: web.Request, body: AdminUserUpdate) -> UserOut:
    user_id = path_uuid(request, "user_id", "User")
    ip = request.app[CLIENT_ADDRESS](request)
    return await request.app[USERS].update(principal_of(request), user_id, body, ip)


@api.delete(
    USER,
    summary="Delete an account (admin)",
    description="As `DELETE /v1/users/me`, for any account. Audited.",
    tag="users",
    status=204,
    role="admin",
    errors=(401, 403, 404, 409, 429),
    examples={404: "User not found", 409: LAST_ADMIN},
)
async def delete_user(request: web.Request) -> None:
    user_id = path_uuid(request, "user_id", "User")
    ip = request.app[CLIENT_ADDRESS](request)
    await request.app[USERS].delete(principal_of(request), user_id, ip)


@api.get(
    "/v1/admin/audit",
    summary="Changes made to accounts, newest first (admin)",
    tag="users",
    query=PageQuery,
    response=AuditList,
    role="admin",
    errors=(400, 401, 403, 429),
)
async def audit_log(request: web.Request, query: PageQuery) -> AuditList:
    return await request.app[USERS].audit_log(query)
