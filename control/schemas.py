"""Field types shared by several domains' request models."""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError("must be a valid email address") from None


def _strong_password(value: str) -> str:
    if (
        len(value) < 8
        or not any(c.isupper() for c in value)
        or not any(c.islower() for c in value)
        or not any(c.isdigit() for c in value)
    ):
        raise ValueError(
            "must be at least 8 characters and include an uppercase letter, "
            "a lowercase letter and a number"
        )
    return value


Email = Annotated[str, Field(max_length=254, examples=["dj@example.com"]), AfterValidator(_email)]
Password = Annotated[
    str, Field(max_length=256, examples=["Sup3rSecret"]), AfterValidator(_strong_password)
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    Field(examples=["DJ Example"]),
]


class PageQuery(BaseModel):
    """`?page=&per_page=` of every list route."""

    model_config = ConfigDict(extra="forbid")

    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(20, ge=1, le=100)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page
