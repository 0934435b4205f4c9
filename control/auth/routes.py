"""`/v1/auth/*`."""

from __future__ import annotations

from aiohttp import web

from control.api import Api
from control.auth.recovery import ACCOUNT_MAIL
from control.auth.schemas import (
    Accepted,
    LoginIn,
    PasswordResetConfirmIn,
    PasswordResetIn,
    RefreshIn,
    RegisterIn,
    TokenPair,
    VerifyEmailIn,
)
from control.auth.service import AUTH, DISABLED
from control.forwarded import CLIENT_ADDRESS
from control.security import principal_of
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
    rate=None,  # limited per address and per email by the service (`Throttle.check_login`)
    errors=(400, 401, 403, 429),
    examples={401: "Invalid email or password", 403: DISABLED},
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
            DISABLED,
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


@api.post(
    "/v1/auth/password-reset",
    summary="Mail a password-reset link",
    description="Always 202, whether or not an account uses the address (nothing tells "
    "them apart). The link works once, for PASSWORD_RESET_TTL_MINUTES (30). Limited per "
    "address (429) and per email (beyond it, nothing more is sent).",
    tag="auth",
    body=PasswordResetIn,
    response=Accepted,
    status=202,
    auth="none",
    rate=None,  # per IP and per email by the service (`Throttle.allow_account_mail`)
    errors=(400, 429),
)
async def password_reset(request: web.Request, body: PasswordResetIn) -> Accepted:
    ip = request.app[CLIENT_ADDRESS](request)
    await request.app[ACCOUNT_MAIL].request_reset(body.email, ip)
    return Accepted(message="If an account uses this address, a reset link is on its way")


@api.post(
    "/v1/auth/password-reset/confirm",
    summary="Set a new password with the token of a reset mail",
    description="Every session of the account ends: refresh tokens and the access tokens "
    "issued before are refused. 400 when the token is unknown, used or expired.",
    tag="auth",
    body=PasswordResetConfirmIn,
    status=204,
    auth="none",
    rate="auth",
    errors=(400, 429),
    examples={
        400: (
            "This password-reset link was already used; ask for a new one",
            "This password-reset link has expired; ask for a new one",
        )
    },
)
async def password_reset_confirm(request: web.Request, body: PasswordResetConfirmIn) -> None:
    ip = request.app[CLIENT_ADDRESS](request)
    await request.app[ACCOUNT_MAIL].confirm_reset(body.token, body.new_password, ip)


@api.post(
    "/v1/auth/verify-email",
    summary="Confirm the account's email with the token of the verification mail",
    tag="auth",
    body=VerifyEmailIn,
    status=204,
    auth="none",
    rate="auth",
    errors=(400, 429),
    examples={
        400: (
            "This verification link was already used; ask for a new one",
            "This verification link has expired; ask for a new one",
        )
    },
)
async def verify_email(request: web.Request, body: VerifyEmailIn) -> None:
    await request.app[ACCOUNT_MAIL].verify_email(body.token)


@api.post(
    "/v1/users/me/email-verification",
    summary="Mail another verification link to the caller's address",
    description="202; nothing is sent when the address is already verified, or beyond the "
    "per-email limit of account mails.",
    tag="users",
    response=Accepted,
    status=202,
    rate=None,  # per IP and per email by the service (`Throttle.allow_account_mail`)
    errors=(401, 429),
)
async def resend_verification(request: web.Request) -> Accepted:
    ip = request.app[CLIENT_ADDRESS](request)
    await request.app[ACCOUNT_MAIL].resend_verification(principal_of(request).user_id, ip)
    return Accepted(message="If the address is not verified yet, a new link is on its way")
