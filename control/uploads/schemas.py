"""Request and response bodies of the uploads routes (backlog US-3.1, US-3.2, US-9.1)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from control.schemas import Name

UploadStatus = Literal["processing", "ready", "failed"]
NO_UPLOADS = "You have not uploaded any audio yet. Use POST /v1/uploads/audio to add an MP3."


class UploadFields(BaseModel):
    """The optional text fields of `POST /v1/uploads/audio` (multipart/form-data)."""

    model_config = ConfigDict(extra="forbid")

    title: Name | None = None
    artist: Name | None = None


class UploadOut(BaseModel):
    """An upload and where its processing stands. `hls_manifest_url` is where it plays
    (409 until `ready`: "still processing", or the reason it failed); `error_message` is
    set once `failed`. `storage_url` names the stored MP3 (`s3://bucket/key`, or
    `file://objects/key` in the server's filesystem store)."""

    upload_id: uuid.UUID
    status: UploadStatus
    title: str = Field(examples=["Opening Track"])
    artist: str | None = Field(examples=["DJ Example"])
    filename: str = Field(examples=["opening-track.mp3"])
    size_bytes: int
    duration_seconds: float | None = Field(examples=[183.2])
    bitrate_kbps: int | None = Field(examples=[128])
    storage_url: str = Field(
        examples=[
            "s3://media-bucket/prod/uploads/audio/9b2e4c1a-8d3f-4f6e-a1b2-c3d4e5f60718/"
            "3fa85f64-5717-4562-b3fc-2c963f66afa6/original.mp3"
        ]
    )
    hls_manifest_url: str = Field(
        examples=["https://api.example.com/v1/uploads/audio/{upload_id}/hls/manifest.m3u8"]
    )
    error_message: str | None = Field(examples=[None])
    created_at: datetime
    completed_at: datetime | None


class UploadList(BaseModel):
    """`GET /v1/uploads/audio`: the caller's uploads, newest first (US-9.1 empty state)."""

    uploads: list[UploadOut]
    page: int
    per_page: int
    total: int
    message: str | None = Field(examples=[None, NO_UPLOADS])


class DeleteQuery(BaseModel):
    """`DELETE /v1/uploads/audio/{upload_id}?force=true` deletes an upload still in use."""

    model_config = ConfigDict(extra="forbid")

    force: bool = False
