"""`/v1/auth/*`."""

from __future__ import annotations

from aiohttp import web

from control.api import Api
from control.auth.schemas import LoginIn, RefreshIn, RegisterIn, TokenPair
from control.auth.service import AUTH
from control.forwarded import CLIENT_ADDRESS
from control.users.schemas import UserOut

api = Api()


@api.post(
    "/v1/auth/register",
    summary="Register a DJ or listener account",
    tag="auth",
    body=RegisterIn,
    response=UserOut,
    status=201,
    auth="none",
    rate="auth",
    errors=(400, 409, 429),
    examples={409: "An account with this email already exists"},
)
async def register(request: web.Request, body: RegisterIn) -> UserOut:
    return await request.app[AUTH].register(body)


@api.post(
    "/v1/auth/login",
    summary="Exchange email and password for tokens",
    tag="auth",
    body=LoginIn,
    response=TokenPair,
    auth="none",
    rate=None,  # limited per email and per IP by the service (`Throttle.check_login`)
    errors=(400, 401, 429),
    examples={401: "Invalid email or password"},
)
async def login(request: web.Request, body: LoginIn) -> TokenPair:
    ip = request.app[CLIENT_ADDRESS](request)
    return await request.app[AUTH].login(body, ip)


@api.post(
    "/v1/auth/refresh",
    summary="Rotate a refresh token for a new token pair",
    tag="auth",
    body=RefreshIn,
    response=TokenPair,
    auth="none",
    rate="auth",
    errors=(400, 401, 429),
    examples={
        401: (
            "Invalid refresh token",
            "Refresh token was already used; every session it belongs to is now signed out",
        )
    },
)
async def refresh(request: web.Request, body: RefreshIn) -> TokenPair:
    return await request.app[AUTH].refresh(body.refresh_token)


@api.post(
    "/v1/auth/logout",
    summary="Revoke a refresh token and its whole family",
    tag="auth",
    body=RefreshIn,
    status=204,
    auth="none",
    rate="auth",
    errors=(400, 429),
)
async def logout(request: web.Request, body: RefreshIn) -> None:
    await request.app[AUTH].logout(body.refresh_token)
