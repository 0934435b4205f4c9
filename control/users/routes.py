"""`/v1/users*`."""

from __future__ import annotations

from aiohttp import web

from control.api import Api
from control.schemas import PageQuery
from control.security import principal_of
from control.users.schemas import UserList, UserOut, UserUpdate
from control.users.service import USERS

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
    summary="Delete the caller's account (soft delete)",
    tag="users",
    status=204,
    errors=(401, 429),
)
async def delete_me(request: web.Request) -> None:
    await request.app[USERS].delete_me(principal_of(request))
