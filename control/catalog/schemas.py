"""Request and response models of the catalog: `GET /v1/tracks`, `GET /v1/tracks/search`
and the playlist and podcast directories."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from control.schemas import PageQuery

#: The most words of a search used (the rest are ignored): bounds the query's cost.
MAX_WORDS = 8
MAX_QUERY_LENGTH = 200
_WORD = re.compile(r"\w+")


def words_of(text: str) -> list[str]:
    """The words of a search, in order (letters and digits, any script)."""
    return _WORD.findall(text)[:MAX_WORDS]


def _has_words(value: str) -> str:
    if not words_of(value):
        raise ValueError("must contain at least one letter or digit")
    return value


SearchText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_LENGTH),
    AfterValidator(_has_words),
    Field(examples=["deep ho"]),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
MusicalKey = Annotated[str, Field(pattern=r"^[A-G][#b]?m?$", examples=["Am"])]
Sort = Literal["created_at", "popularity", "duration", "title"]
Order = Literal["asc", "desc"]
TrackVisibility = Literal["public", "unlisted", "private"]
MAX_TAGS = 10


def _tag_list(value: str) -> str:
    tags = [tag.strip() for tag in value.split(",") if tag.strip()]
    if not tags:
        raise ValueError("must name at least one tag")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"must name at most {MAX_TAGS} tags")
    if any(len(tag) > 30 for tag in tags):
        raise ValueError("must have tags of at most 30 characters")
    return ",".join(tags)


TagList = Annotated[
    str,
    StringConstraints(max_length=400),
    AfterValidator(_tag_list),
    Field(examples=["deep,vinyl"]),
]


class TrackFilters(PageQuery):
    """The filters of `GET /v1/tracks` and `GET /v1/tracks/search` (names of the tracks
    spec): `tags` a comma list, every one must match; text filters ignore case and accents."""

    genre: Text | None = None
    tags: TagList | None = None
    artist: Text | None = None
    uploader_id: uuid.UUID | None = None
    min_duration: int | None = Field(None, ge=0, le=86_400)
    max_duration: int | None = Field(None, ge=0, le=86_400)
    bpm_min: int | None = Field(None, ge=0, le=1000)
    bpm_max: int | None = Field(None, ge=0, le=1000)
    key: MusicalKey | None = None
    #: With a token: the caller's own private and unlisted tracks too.
    mine: bool = False

    @model_validator(mode="after")
    def _ranges(self) -> TrackFilters:
        if (
            self.min_duration is not None
            and self.max_duration is not None
            and self.min_duration > self.max_duration
        ):
            raise ValueError("min_duration must not be greater than max_duration")
        if self.bpm_min is not None and self.bpm_max is not None and self.bpm_min > self.bpm_max:
            raise ValueError("bpm_min must not be greater than bpm_max")
        return self

    @property
    def tag_list(self) -> list[str]:
        return self.tags.split(",") if self.tags else []


class TrackListQuery(TrackFilters):
    """`GET /v1/tracks`: newest first unless `sort`/`order` say otherwise (`popularity`
    is the play count)."""

    sort: Sort = "created_at"
    order: Order = "desc"


class TrackSearchQuery(TrackFilters):
    """`GET /v1/tracks/search`: `q` is required; the last word is matched as a prefix."""

    q: SearchText


class TrackSummary(BaseModel):
    """A track as lists and search show it; media URLs under `/v1/tracks/{track_id}/`."""

    track_id: uuid.UUID
    title: str = Field(examples=["Midnight Dreams"])
    artist: str = Field(examples=["Alice Producer"])
    album: str | None
    genre: str | None = Field(examples=["Deep House"])
    tags: list[str] = Field(examples=[["deep", "vinyl"]])
    bpm: int | None = Field(examples=[122])
    key: str | None = Field(examples=["Am"])
    duration_seconds: float | None = Field(examples=[245.3])
    visibility: TrackVisibility
    uploader_id: uuid.UUID
    plays: int
    created_at: datetime
    hls_master_url: str = Field(examples=["https://radio.example.com/v1/tracks/{id}/master.m3u8"])
    waveform_url: str = Field(examples=["https://radio.example.com/v1/tracks/{id}/waveform.json"])
    #: Null when the track has no artwork.
    artwork_url: str | None = Field(
        examples=["https://radio.example.com/v1/tracks/{id}/artwork.jpg"]
    )


class TrackList(BaseModel):
    """`total` is counted up to 1 000 tracks; beyond, it is estimated from the database's
    statistics (`total_exact` false), as counting every track would cost more than the page."""

    tracks: list[TrackSummary]
    page: int
    per_page: int
    total: int
    #: False: `total` is an estimate (more than 1 000 tracks).
    total_exact: bool = True


class FacetCount(BaseModel):
    value: str = Field(examples=["Deep House"])
    count: int


class BpmBucket(BaseModel):
    """Tracks whose BPM is in `[min, max]` (a missing bound: open)."""

    range: str = Field(examples=["110-129"])
    min: int | None = Field(examples=[110])
    max: int | None = Field(examples=[129])
    count: int


class Facets(BaseModel):
    """Counts over every track the search and its filters match (not only this page;
    estimated from a sample when `facets_approximate`)."""

    genre: list[FacetCount]
    key: list[FacetCount]
    bpm: list[BpmBucket]


class TrackSearchResult(TrackList):
    """Best match first, in two tiers: tracks whose title, artist and album hold every
    word of the search, then those that need their tags, genre or description for it;
    within a tier by relevance (weighted title > artist and album > tags and genre >
    description), then plays.

    A search with at most 500 matches reads them all: everything is exact. A broader one
    reads the first 500 matches in the table's order and every title and artist match up
    to 300 of them: `total` is then estimated (`total_exact` false) from the share of the
    table those samples were found in, the facet counts are those of the matches read,
    each tier's scaled to its estimate (`facets_approximate` true), and `ranking_exact`
    says whether this page is exactly the page of the ranking of all matches: it is when
    the title and artist matches were all read (300 or fewer) and the page lies among
    them. A page beyond them ranks a sample of the other matches (add a word or a filter
    to narrow the search)."""

    facets: Facets
    #: True: the facet counts are estimated from the matches read (see above).
    facets_approximate: bool = False
    #: False: this page was ranked among a sample of the matches (see above).
    ranking_exact: bool = True


class DirectoryQuery(PageQuery):
    """`q`: words in the title or description (the last one as a prefix); best match first
    with `q`, else newest first."""

    q: SearchText | None = None


class PodcastDirectoryQuery(DirectoryQuery):
    category: Text | None = Field(None, examples=["Music"])
    language: Annotated[str | None, Field(pattern=r"^[a-z]{2}-[a-z]{2}$", examples=["en-us"])] = (
        None
    )


class PlaylistEntry(BaseModel):
    playlist_id: uuid.UUID
    title: str = Field(examples=["Friday warm-up"])
    description: str
    owner_id: uuid.UUID
    track_count: int
    monetization_enabled: bool
    created_at: datetime
    url: str = Field(examples=["https://radio.example.com/v1/playlists/{id}"])
    hls_url: str = Field(examples=["https://radio.example.com/v1/playlists/{id}/stream.m3u8"])


class PlaylistDirectory(BaseModel):
    playlists: list[PlaylistEntry]
    page: int
    per_page: int
    total: int


class PodcastEntry(BaseModel):
    podcast_id: uuid.UUID
    title: str = Field(examples=["Deep Sessions"])
    description: str
    author: str
    category: str = Field(examples=["Music"])
    language: str = Field(examples=["en-us"])
    image_url: str
    explicit: bool
    monetization_enabled: bool
    episode_count: int
    created_at: datetime
    url: str = Field(examples=["https://radio.example.com/v1/podcasts/{id}"])
    rss_feed_url: str = Field(examples=["https://radio.example.com/v1/podcasts/{id}/rss.xml"])


class PodcastDirectory(BaseModel):
    podcasts: list[PodcastEntry]
    page: int
    per_page: int
    total: int
