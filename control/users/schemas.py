"""Request and response bodies of the users routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from control.schemas import Name, Password


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
