"""Request and response bodies of the DJ profile routes."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

MAX_BIO = 2000


def _plain(value: str) -> str:
    """Plain text: no control characters but line breaks and tabs (no markup is ever
    rendered from it either: clients show it as text)."""
    for char in value:
        if unicodedata.category(char) == "Cc" and char not in "\n\t":
            raise ValueError("must be plain text (no control characters)")
    return value


def _web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value


Genre = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=40),
    AfterValidator(_plain),
]


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=60),
        AfterValidator(_plain),
    ] = Field(examples=["SoundCloud"])
    url: Annotated[str, Field(max_length=2000), AfterValidator(_web_url)] = Field(
        examples=["https://soundcloud.com/dj-example"]
    )


class ProfileIn(BaseModel):
    """`PUT /v1/users/me/profile`: the whole profile (fields left out are emptied)."""

    model_config = ConfigDict(extra="forbid")

    stage_name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
        AfterValidator(_plain),
    ] = Field(examples=["DJ Example"])
    bio: Annotated[str, Field(max_length=MAX_BIO), AfterValidator(_plain)] = Field(
        "", examples=["Deep house from Lisbon, every Friday night."]
    )
    genres: list[Genre] = Field(default_factory=list, max_length=10, examples=[["house", "techno"]])
    links: list[Link] = Field(default_factory=list, max_length=10)


class ProfileOut(BaseModel):
    dj_id: uuid.UUID
    stage_name: str
    bio: str
    genres: list[str]
    links: list[Link]
    #: The resized avatar (JPEG), when one was uploaded.
    avatar_url: str | None = Field(examples=["https://radio.example.com/v1/djs/…/avatar.jpg"])
    updated_at: datetime


class DjStream(BaseModel):
    stream_id: uuid.UUID
    name: str
    genre: str | None


class DjPlaylist(BaseModel):
    playlist_id: uuid.UUID
    title: str


class DjPodcast(BaseModel):
    podcast_id: uuid.UUID
    title: str
    feed_url: str


class DjPage(ProfileOut):
    """`GET /v1/djs/{dj_id}`: the public profile with what the DJ offers."""

    #: Public streams on air now (enabled).
    streams: list[DjStream]
    #: Public playlists.
    playlists: list[DjPlaylist]
    podcasts: list[DjPodcast]
