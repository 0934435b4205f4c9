"""Request and response bodies of the custom-domain routes (backlog US-4.7, US-4.8)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

VerificationStatus = Literal["pending", "verified"]
TlsStatus = Literal["pending", "issued"]

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Backlog US-4.7: the last label is alphabetic, at least 2 letters (or an IDNA TLD).
_TLD = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


def normalize_hostname(value: str) -> str:
    """A DNS host name in canonical form (lower case, IDNA, no trailing dot), or
    ValueError. At least two labels; letters, digits and inner hyphens only."""
    host = value.strip().lower().removesuffix(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("must be a domain name such as podcast.example.com") from None
    labels = host.split(".")
    if (
        len(host) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or not _TLD.match(labels[-1])
    ):
        raise ValueError("must be a domain name such as podcast.example.com")
    return host


Hostname = Annotated[
    str,
    Field(max_length=253, examples=["podcast.djname.com"]),
    AfterValidator(normalize_hostname),
]


class DomainIn(BaseModel):
    """`POST /v1/domains`."""

    model_config = ConfigDict(extra="forbid")

    custom_domain: Hostname


class DnsRecord(BaseModel):
    """The record the owner publishes to prove control of the domain."""

    type: Literal["TXT"] = "TXT"
    name: str = Field(examples=["_mediaserver-challenge.podcast.djname.com"])
    value: str = Field(examples=["acme-challenge=4f1c2b7e9a0d4c3b8e6f5a2d1c0b9e8f"])


class DomainOut(BaseModel):
    domain_id: uuid.UUID
    custom_domain: str = Field(examples=["podcast.djname.com"])
    verification_status: VerificationStatus
    tls_status: TlsStatus
    #: The TXT record's value (backlog US-4.7); where to publish it is in `dns_record`.
    dns_challenge_record: str = Field(examples=["acme-challenge=4f1c2b7e9a0d4c3b8e6f5a2d1c0b9e8f"])
    #: The whole record to publish: its type, name and value.
    dns_record: DnsRecord
    instructions: str
    #: The podcast served at this domain (attach with `PATCH /v1/podcasts/{id}`).
    podcast_id: uuid.UUID | None
    created_at: datetime
    verified_at: datetime | None
    last_checked: datetime


NO_DOMAINS = "You have no custom domains yet. Register one with POST /v1/domains."


class DomainList(BaseModel):
    """US-9.1: `message` when the caller has no domains, else null."""

    domains: list[DomainOut]
    page: int
    per_page: int
    total: int
    message: str | None = Field(default=None, examples=[None, NO_DOMAINS])
