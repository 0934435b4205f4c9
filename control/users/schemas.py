"""Request and response bodies of the users routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from control.schemas import Name, Password

UploadPlan = Literal["free", "basic", "pro", "artist"]


class UserOut(BaseModel):
    user_id: uuid.UUID
    email: str = Field(examples=["dj@example.com"])
    name: str = Field(examples=["DJ Example"])
    role: Literal["dj", "listener", "admin"]
    created_at: datetime
    #: `disabled` by an admin: the account cannot sign in.
    status: Literal["active", "disabled"] = "active"
    #: The owner followed the link mailed to this address.
    email_verified: bool = False
    #: The upload plan (set by an admin): see `GET /v1/users/me/quota`.
    upload_plan: UploadPlan = "basic"


class UserList(BaseModel):
    users: list[UserOut]
    page: int
    per_page: int
    total: int


class UserUpdate(BaseModel):
    """`PATCH /v1/users/me`: a new name, and/or a new password with the current one."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    current_password: str | None = None
    new_password: Password | None = None

    @model_validator(mode="after")
    def _password_change_needs_current(self) -> UserUpdate:
        if self.new_password is not None and not self.current_password:
            raise ValueError("Field 'current_password' is required to change the password")
        if self.name is None and self.new_password is None:
            raise ValueError("Nothing to update: send 'name' and/or 'new_password'")
        return self


NOTHING_TO_UPDATE = "Nothing to update: send 'status', 'role', 'name' and/or 'upload_plan'"


class AdminUserUpdate(BaseModel):
    """`PATCH /v1/users/{user_id}` (admin): any non-empty subset."""

    model_config = ConfigDict(extra="forbid")

    #: `disabled` ends the account's sessions at once and takes its streams off air;
    #: `active` lets it sign in again (its streams stay off until it turns them on).
    status: Literal["active", "disabled"] | None = None
    #: A new role takes effect at once: the account's sessions end (tokens carry the role).
    role: Literal["dj", "listener", "admin"] | None = None
    name: Name | None = None
    #: The DJ's upload plan (size, length, uploads a month, storage): at once.
    upload_plan: UploadPlan | None = None

    @model_validator(mode="after")
    def _something(self) -> AdminUserUpdate:
        if self.model_dump(exclude_none=True) == {}:
            raise ValueError(NOTHING_TO_UPDATE)
        return self


class AuditEntry(BaseModel):
    """One change made to an account: who, what, when, from which address."""

    audit_id: int
    #: The account that made the change (None: the system, e.g. `create-admin`).
    actor_id: uuid.UUID | None
    action: str = Field(examples=["user.disabled"])
    target_id: uuid.UUID | None
    details: dict[str, object] = Field(examples=[{"status": ["active", "disabled"]}])
    ip: str | None = Field(examples=["203.0.113.7"])
    created_at: datetime


class AuditList(BaseModel):
    entries: list[AuditEntry]
    page: int
    per_page: int
    total: int
