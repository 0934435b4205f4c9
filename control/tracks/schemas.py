"""Request and response bodies of the track routes (issue 13; the tracks spec's validation
rules: title 1–200, artist 1–100, description ≤ 2000, ≤ 10 tags of ≤ 30 characters, genre
≤ 50, BPM 40–300, key `^[A-G][#b]?m?$`, the spec's licences)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

TrackStatus = Literal["processing", "ready", "failed"]
Visibility = Literal["public", "unlisted", "private"]
Quality = Literal["low", "medium", "high", "lossless"]
License = Literal[
    "All Rights Reserved",
    "Creative Commons BY",
    "Creative Commons BY-SA",
    "Creative Commons BY-NC",
    "Public Domain",
]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Artist = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
MusicalKey = Annotated[str, StringConstraints(pattern=r"^[A-G][#b]?m?$")]


class TrackFields(BaseModel):
    """What `metadata` (POST) and a `PATCH` body may set. `is_public: false` means
    `private`; `visibility` also accepts `unlisted` (played by link, listed nowhere)."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = Field(None, examples=["Midnight Dreams"])
    artist: Artist | None = Field(None, examples=["Alice Producer"])
    album: Annotated[str, StringConstraints(max_length=200)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        None, examples=["A journey through electronic soundscapes"]
    )
    tags: list[Tag] | None = Field(None, max_length=10, examples=[["electronic", "ambient"]])
    genre: Annotated[str, StringConstraints(max_length=50)] | None = Field(
        None, examples=["Electronic"]
    )
    year: int | None = Field(None, ge=1000, le=9999)
    bpm: int | None = Field(None, ge=40, le=300, examples=[128])
    key: MusicalKey | None = Field(None, examples=["Am"])
    is_public: bool | None = Field(None, examples=[True])
    visibility: Visibility | None = None
    is_downloadable: bool | None = Field(None, examples=[False])
    license: License | None = Field(None, examples=["Creative Commons BY-SA"])

    @model_validator(mode="after")
    def _one_visibility(self) -> TrackFields:
        if (
            self.is_public is not None
            and self.visibility is not None
            and self.is_public != (self.visibility == "public")
        ):
            raise ValueError("'is_public' and 'visibility' disagree: send one of them")
        return self

    def chosen_visibility(self) -> Visibility | None:
        if self.visibility is not None:
            return self.visibility
        if self.is_public is not None:
            return "public" if self.is_public else "private"
        return None


class TrackUploadForm(BaseModel):
    """The parts of `POST /v1/tracks` (multipart/form-data)."""

    metadata: str = Field(
        description="JSON object: title, artist, description, tags, genre, bpm, key, "
        "is_public (or visibility), is_downloadable, license, album, year",
        examples=['{"title": "Midnight Dreams", "artist": "Alice Producer", "bpm": 128}'],
    )


class RenditionOut(BaseModel):
    """One rung of the quality ladder: HLS (`hls_url`, null when it has none) and one
    progressive file with byte ranges (`file_url`)."""

    quality: Quality
    format: str = Field(examples=["mp3"])
    codec: str = Field(examples=["mp3"])
    bitrate_kbps: int | None = Field(examples=[128])
    hls_url: str | None
    file_url: str


class DayPlays(BaseModel):
    day: date
    plays: int
    unique_listeners: int


class TrackStats(BaseModel):
    plays: int
    unique_listeners: int
    by_day: list[DayPlays]


class RelatedTrack(BaseModel):
    track_id: uuid.UUID
    title: str
    artist: str
    genre: str | None
    duration_seconds: float | None
    artwork_url: str | None
    url: str


class TrackOut(BaseModel):
    """A track: its catalog metadata, where processing stands (`processing` → `ready` |
    `failed` with `error_message`) and, once ready, its media."""

    track_id: uuid.UUID
    status: TrackStatus
    error_message: str | None = Field(examples=[None])
    title: str = Field(examples=["Midnight Dreams"])
    artist: str = Field(examples=["Alice Producer"])
    album: str | None
    description: str
    tags: list[str]
    genre: str | None
    year: int | None
    bpm: int | None
    key: str | None
    visibility: Visibility
    is_public: bool
    is_downloadable: bool
    license: str
    uploader_id: uuid.UUID
    filename: str
    source_format: str | None = Field(examples=["flac"])
    sample_rate: int | None
    channels: int | None
    duration_seconds: float | None = Field(examples=[245.3])
    loudness_lufs: float | None = Field(examples=[-14.2])
    hls_master_url: str | None
    waveform_url: str | None
    artwork_url: str | None
    renditions: list[RenditionOut]
    stats: TrackStats
    related: list[RelatedTrack]
    created_at: datetime
    updated_at: datetime


class TrackDeleteQuery(BaseModel):
    """`DELETE /v1/tracks/{track_id}?force=true` deletes a track a playlist uses."""

    model_config = ConfigDict(extra="forbid")

    force: bool = False


class StreamQuery(BaseModel):
    """Which progressive file `GET /v1/tracks/{track_id}/stream` sends."""

    model_config = ConfigDict(extra="forbid")

    quality: Quality = "medium"
    format: Literal["mp3", "m4a", "aac", "flac", "wav", "aiff", "ogg"] | None = None


class QuotaOut(BaseModel):
    """`GET /v1/users/me/quota`: the caller's upload plan, its effective limits (the smaller
    of the plan's and the server's settings) and what is used of it. Admins are exempt:
    their `uploads_per_month` and `storage_bytes` are null."""

    upload_plan: Literal["free", "basic", "pro", "artist"]
    exempt: bool = Field(examples=[False])
    max_file_bytes: int = Field(examples=[52428800])
    max_duration_seconds: float = Field(examples=[360.0])
    uploads_this_month: int = Field(examples=[3])
    uploads_per_month: int | None = Field(examples=[10])
    storage_used_bytes: int = Field(examples=[73400320])
    storage_bytes: int | None = Field(examples=[1073741824])
    #: When the monthly count starts again (the first of next month, UTC).
    month_resets_at: datetime
