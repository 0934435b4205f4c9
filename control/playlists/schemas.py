"""Request and response bodies of the playlist routes (backlog US-3.3 – US-3.6, US-11.1)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from control.urlguard import check_syntax

Visibility = Literal["public", "private"]
SourceType = Literal["upload", "external"]
TrackStatus = Literal["ready", "processing", "failed"]
MAX_TRACKS = 500

#: US-11.1, word for word.
NO_PLAYLISTS = "You have not created any playlists yet. Use POST /v1/playlists to add one!"

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
MediaUrl = Annotated[
    str,
    Field(max_length=2048, examples=["https://cdn.example.com/audio/track2.mp3"]),
    AfterValidator(check_syntax),
]
Flag = Annotated[bool, Field(strict=True)]


class TrackIn(BaseModel):
    """One track: a `ready` upload of the playlist owner's, or an external MP3 URL that
    answers `HEAD` with 200 and `audio/mpeg` (fetched once and segmented like an upload).
    `title`/`artist` default to the upload's; `duration_seconds` is shown until the
    track's real duration is measured."""

    model_config = ConfigDict(extra="forbid")

    source_type: SourceType
    upload_id: uuid.UUID | None = None
    url: MediaUrl | None = None
    title: Title | None = Field(None, examples=["Track One"])
    artist: Title | None = Field(None, examples=["Artist A"])
    duration_seconds: float | None = Field(None, ge=0, le=86_400, examples=[180])

    @model_validator(mode="after")
    def _source(self) -> TrackIn:
        if self.source_type == "upload" and (self.upload_id is None or self.url is not None):
            raise ValueError(
                "Field 'upload_id' is required and 'url' must be null when source_type is 'upload'"
            )
        if self.source_type == "external" and (self.url is None or self.upload_id is not None):
            raise ValueError(
                "Field 'url' is required and 'upload_id' must be null when source_type is "
                "'external'"
            )
        return self


class PlaylistIn(BaseModel):
    """`POST /v1/playlists` and `PUT /v1/playlists/{playlist_id}` (the whole playlist)."""

    model_config = ConfigDict(extra="forbid")

    title: Title = Field(examples=["Chill Evening Vibes"])
    description: Description | None = Field("", examples=["Smooth tracks for an evening stream."])
    tracks: list[TrackIn] = Field(min_length=1, max_length=MAX_TRACKS)
    visibility: Visibility = "public"
    monetization_enabled: Flag = False


class StreamUrls(BaseModel):
    hls: str = Field(examples=["https://api.example.com/v1/playlists/{id}/stream.m3u8"])
    mp3: str = Field(examples=["https://api.example.com/v1/playlists/{id}/stream.mp3"])


class PlaylistCreated(BaseModel):
    playlist_id: uuid.UUID
    stream_urls: StreamUrls


class PlaylistUpdated(BaseModel):
    playlist_id: uuid.UUID
    updated: bool = True


class TrackOut(BaseModel):
    """`url` is set for external tracks, `upload_id` for uploads. `duration_seconds` is
    measured from the audio once the track is ready (the client's figure until then)."""

    track_id: uuid.UUID
    source_type: SourceType
    upload_id: uuid.UUID | None = None
    url: str | None = None
    title: str
    artist: str | None
    duration_seconds: float | None
    status: TrackStatus
    error_message: str | None


class PlaylistSummary(BaseModel):
    playlist_id: uuid.UUID
    title: str
    description: str
    visibility: Visibility
    monetization_enabled: bool
    #: Every track is ready: `stream.m3u8` and `stream.mp3` play (409 until then).
    hls_ready: bool
    track_count: int
    stream_urls: StreamUrls
    created_at: datetime
    updated_at: datetime


class PlaylistOut(PlaylistSummary):
    """US-3.4: tracks in playlist order."""

    tracks: list[TrackOut]


class PlaylistList(BaseModel):
    """US-11.1: `message` when the caller has no playlists, else null."""

    playlists: list[PlaylistSummary]
    message: str | None = Field(examples=[NO_PLAYLISTS])
    page: int
    per_page: int
    total: int
