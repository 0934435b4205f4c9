"""Request and response bodies of the auth routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from control.schemas import Email, Name, Password


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    name: Name
    #: Self-service accounts are DJs or listeners; admins are made with `create-admin`.
    role: Literal["dj", "listener"] = "dj"


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=254, examples=["dj@example.com"])
    password: str = Field(min_length=1, max_length=256, examples=["Str0ngPassw0rd"])


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(
        min_length=1, max_length=512, examples=["4kP0v1Jx2b9QeL7mZ8sT3nWc5yR6dA1fH0gU9iK2oE"]
    )


class TokenPair(BaseModel):
    access_token: str = Field(examples=["eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOi…"])
    refresh_token: str = Field(examples=["4kP0v1Jx2b9QeL7mZ8sT3nWc5yR6dA1fH0gU9iK2oE"])
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (RFC 6750 token type)
    #: Seconds until the access token expires.
    expires_in: int = Field(examples=[86400])


class PasswordResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=254, examples=["dj@example.com"])


class PasswordResetConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The `token` of the link in the reset mail.
    token: str = Field(min_length=1, max_length=512, examples=["Zx8vQ0pL3m…"])
    new_password: Password


class VerifyEmailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The `token` of the link in the verification mail.
    token: str = Field(min_length=1, max_length=512, examples=["Zx8vQ0pL3m…"])


class Accepted(BaseModel):
    """The request was taken; what follows happens by mail."""

    message: str = Field(examples=["If an account uses this address, a reset link is on its way"])
