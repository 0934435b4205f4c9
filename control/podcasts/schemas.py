"""Request and response bodies of the podcast routes (backlog US-4.1 – US-4.5, US-11.2)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    model_validator,
)

from control.domains.schemas import Hostname
from control.podcasts.feed import normalize_newlines, xml_safe
from control.schemas import Email
from control.urlguard import check_syntax

INT4_MAX = 2_147_483_647
PodcastType = Literal["episodic", "serial"]
EpisodeType = Literal["full", "trailer", "bonus"]
SourceType = Literal["upload", "external"]
#: Apple Podcasts' top-level categories (`itunes:category text`).
Category = Literal[
    "Arts", "Business", "Comedy", "Education", "Fiction", "Government", "Health & Fitness",
    "History", "Kids & Family", "Leisure", "Music", "News", "Religion & Spirituality",
    "Science", "Society & Culture", "Sports", "Technology", "True Crime", "TV & Film",
]  # fmt: skip
_LANGUAGE = re.compile(r"^[a-z]{2}-[a-z]{2}$")


def _feed_text(value: str) -> str:
    if not xml_safe(value):
        raise ValueError("must not contain control characters")
    return normalize_newlines(value)


def _language(value: str) -> str:
    if not _LANGUAGE.match(value):
        raise ValueError("must be a language code such as en-us (pattern ^[a-z]{2}-[a-z]{2}$)")
    return value


def _utc(value: datetime) -> datetime:
    """ISO 8601; a time without an offset is taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_feed_text),
]
Author = Title
#: Apple shows up to 4000 characters.
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=4000), AfterValidator(_feed_text)
]
#: A show's `<description>` is required by Apple Podcasts: never empty (nor only blanks).
ShowDescription = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    AfterValidator(_feed_text),
]
Language = Annotated[str, Field(examples=["en-us"]), AfterValidator(_language)]
HttpUrl = Annotated[
    str,
    Field(max_length=2048, examples=["https://cdn.example.com/images/podcast-cover.jpg"]),
    AfterValidator(check_syntax),
]
MediaUrl = Annotated[
    str, Field(max_length=2048, examples=["https://cdn.example.com/ep1.mp3"]),
    AfterValidator(check_syntax),
]  # fmt: skip
Flag = Annotated[bool, Field(strict=True)]
Count = Annotated[int, Field(ge=1, le=INT4_MAX, strict=True)]
Seconds = Annotated[int, Field(ge=0, le=INT4_MAX, strict=True, examples=[3600])]
PublicationDate = Annotated[
    datetime, Field(examples=["2025-06-10T14:00:00Z"]), AfterValidator(_utc)
]


class PartialUpdate(BaseModel):
    """A PATCH body: any non-empty subset of the fields, the `NOT_NULL` ones never null.
    `changes()` keeps the order the client sent the fields in (`updated_fields`)."""

    model_config = ConfigDict(extra="forbid")
    NOT_NULL: ClassVar[tuple[str, ...]] = ()
    _order: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_order(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(data, dict):
            for name in cls.NOT_NULL:
                if name in data and data[name] is None:
                    raise ValueError(f"Field '{name}' must not be null")
        model = handler(data)
        if isinstance(data, dict):
            model._order = [name for name in data if name in cls.model_fields]
        if not model._order:
            raise ValueError(
                f"Nothing to update: send at least one of {', '.join(cls.model_fields)}"
            )
        return model

    def changes(self) -> dict[str, Any]:
        """The fields sent, in request order, with their new values."""
        return {name: getattr(self, name) for name in self._order}


class PodcastIn(BaseModel):
    """`POST /v1/podcasts`. `custom_domain` must be a verified domain of the caller's
    (`POST /v1/domains`) that no other podcast uses."""

    model_config = ConfigDict(extra="forbid")

    title: Title = Field(examples=["Tech DJ Podcast"])
    description: ShowDescription = Field(examples=["Weekly interviews with top DJs."])
    language: Language
    author: Author = Field(examples=["DJ Example"])
    image_url: HttpUrl
    explicit: Flag = False
    custom_domain: Hostname | None = None
    monetization_enabled: Flag = False
    category: Category = "Music"
    podcast_type: PodcastType = "episodic"
    #: `itunes:owner`; default: the author's name and the caller's account email.
    owner_name: Author | None = None
    owner_email: Email | None = None


class PodcastCreated(BaseModel):
    podcast_id: uuid.UUID
    rss_feed_url: str = Field(examples=["https://api.example.com/v1/podcasts/{id}/rss.xml"])


class PodcastUpdate(PartialUpdate):
    """`PATCH /v1/podcasts/{podcast_id}`; `custom_domain: null` detaches the domain."""

    NOT_NULL = (
        "title", "description", "language", "author", "image_url", "explicit",
        "monetization_enabled", "category", "podcast_type", "owner_name", "owner_email",
    )  # fmt: skip

    title: Title | None = None
    description: ShowDescription | None = None
    language: Language | None = None
    author: Author | None = None
    image_url: HttpUrl | None = None
    explicit: Flag | None = None
    custom_domain: Hostname | None = None
    monetization_enabled: Flag | None = None
    category: Category | None = None
    podcast_type: PodcastType | None = None
    owner_name: Author | None = None
    owner_email: Email | None = None


class PodcastUpdated(BaseModel):
    podcast_id: uuid.UUID
    updated_fields: list[str] = Field(examples=[["title", "custom_domain"]])


class EpisodeIn(BaseModel):
    """`POST /v1/podcasts/{podcast_id}/episodes`: an upload of the owner's that is
    `ready`, or an external `media_url` answering `HEAD` with 200 and `audio/mpeg`."""

    model_config = ConfigDict(extra="forbid")

    title: Title = Field(examples=["Episode 1: Live from Ibiza"])
    description: Description = Field("", examples=["Exclusive set and interview."])
    source_type: SourceType
    upload_id: uuid.UUID | None = None
    media_url: MediaUrl | None = None
    #: Default: the upload's duration; for external media, estimated from its first bytes.
    duration_seconds: Seconds | None = None
    #: ISO 8601 (UTC when no offset); default now. Later dates stay out of the feed until then.
    publication_date: PublicationDate | None = None
    episode_number: Count | None = None
    season: Count | None = None
    episode_type: EpisodeType = "full"
    explicit: Flag = False
    monetization_required: Flag = False

    @model_validator(mode="after")
    def _source(self) -> EpisodeIn:
        check_source(self.source_type, self.upload_id, self.media_url)
        return self


def check_source(source: str, upload_id: uuid.UUID | None, media_url: str | None) -> None:
    """The media fields must match `source_type` (ValueError naming the field)."""
    if source == "upload" and (upload_id is None or media_url is not None):
        raise ValueError(
            "Field 'upload_id' is required and 'media_url' must be null when source_type is "
            "'upload'"
        )
    if source == "external" and (media_url is None or upload_id is not None):
        raise ValueError(
            "Field 'media_url' is required and 'upload_id' must be null when source_type is "
            "'external'"
        )


class EpisodeCreated(BaseModel):
    episode_id: uuid.UUID


class EpisodeUpdate(PartialUpdate):
    """`PATCH …/episodes/{episode_id}`. Changing the media: send `media_url` (external) or
    `upload_id` (upload), with `source_type` when it changes."""

    NOT_NULL = (
        "title", "description", "source_type", "publication_date", "episode_type",
        "explicit", "monetization_required",
    )  # fmt: skip

    title: Title | None = None
    description: Description | None = None
    source_type: SourceType | None = None
    upload_id: uuid.UUID | None = None
    media_url: MediaUrl | None = None
    duration_seconds: Seconds | None = None
    publication_date: PublicationDate | None = None
    episode_number: Count | None = None
    season: Count | None = None
    episode_type: EpisodeType | None = None
    explicit: Flag | None = None
    monetization_required: Flag | None = None


class EpisodeUpdated(BaseModel):
    episode_id: uuid.UUID
    updated_fields: list[str] = Field(examples=[["media_url", "monetization_required"]])


class EpisodeOut(BaseModel):
    episode_id: uuid.UUID
    source_type: SourceType
    upload_id: uuid.UUID | None
    #: The enclosure: the external URL, or this server's media route for uploads and (but
    #: for the owner and admins) for external episodes behind the paywall.
    media_url: str
    media_size_bytes: int
    title: str
    description: str
    duration_seconds: int | None
    publication_date: datetime
    #: False while `publication_date` is in the future (only the owner sees those).
    published: bool
    episode_number: int | None
    season: int | None
    episode_type: EpisodeType
    explicit: bool
    monetization_required: bool


class PrivateFeedUrl(BaseModel):
    """`GET /v1/podcasts/{podcast_id}/feed-url`: the caller's own feed URL, for podcast apps
    that cannot send a token. It works while the caller may read the feed (an active
    subscription for a paywalled one) and until `expires_at`; keep it private."""

    feed_url: str = Field(examples=["https://api.example.com/v1/podcasts/{id}/rss.xml?grant=0f1e…"])
    #: The same at the podcast's custom domain, when it has one.
    custom_feed_url: str | None = Field(examples=["https://podcast.djname.com/rss.xml?grant=0f1e…"])
    expires_at: datetime


class PodcastSummary(BaseModel):
    podcast_id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str
    language: str
    author: str
    image_url: str
    explicit: bool
    category: str
    podcast_type: PodcastType
    owner_name: str
    owner_email: str
    custom_domain: str | None
    #: `https://{custom_domain}/rss.xml` once the domain is verified and attached.
    custom_feed_url: str | None
    monetization_enabled: bool
    rss_feed_url: str
    created_at: datetime
    updated_at: datetime


class PodcastOut(PodcastSummary):
    """US-4.2, with US-11.2's `message` when there are no episodes (else null)."""

    episodes: list[EpisodeOut]
    message: str | None = Field(
        examples=["No episodes yet. Add your first episode via POST /v1/podcasts/{id}/episodes."]
    )


NO_PODCASTS = "You have no podcasts yet. Create one with POST /v1/podcasts."


class PodcastList(BaseModel):
    """US-9.1: `message` when the caller has no podcasts, else null."""

    podcasts: list[PodcastSummary]
    page: int
    per_page: int
    total: int
    message: str | None = Field(default=None, examples=[None, NO_PODCASTS])
