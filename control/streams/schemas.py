"""Request and response bodies of the streams routes (backlog US-2.1 – US-2.5, US-6.4)."""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from control.schemas import Name, PageQuery
from relay.status import ServerKind

Visibility = Literal["public", "private"]
AdType = Literal["pre-roll", "mid-roll", "post-roll"]
INT4_MAX = 2_147_483_647

_HOST_NAME = re.compile(
    r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$"
)
# RFC 3986 path characters (pchar) and "/": enough for "/live", "/;", "/stream/1/".
_MOUNT = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


def _source_url(value: str) -> str:
    """`scheme://host[:port]`, normalised; the stream's path belongs in `mount`."""
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if "@" in parts.netloc:
        raise ValueError("must not contain credentials (send the key as 'stream_key')")
    if "?" in value or "#" in value:
        raise ValueError("must not have a query string or fragment")
    if parts.path not in ("", "/"):
        raise ValueError("must not have a path (put the stream's path in 'mount')")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    host = parts.hostname or ""
    if not (_is_ip(host) or _HOST_NAME.match(host)):
        raise ValueError("must include a valid host name")
    if port == 0:
        raise ValueError("has an invalid port")
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{netloc}" + (f":{port}" if port is not None else "")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _mount(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    if any(c.isspace() for c in value):
        raise ValueError("must not contain spaces")
    if ".." in value:
        raise ValueError("must not contain '..'")
    if not _MOUNT.match(value):
        raise ValueError("may only contain URL path characters")
    return value


def _key_length(value: Any) -> Any:
    if isinstance(value, str) and not 1 <= len(value) <= 256:
        raise ValueError("must be 1 to 256 characters long")
    return value


SourceUrl = Annotated[
    str,
    Field(max_length=2048, examples=["http://djshoutcast.example.com:8000"]),
    AfterValidator(_source_url),
]
Mount = Annotated[str, Field(max_length=255, examples=["/live"]), AfterValidator(_mount)]
#: A SecretStr: printing or logging the model shows '**********'.
StreamKey = Annotated[
    SecretStr,
    BeforeValidator(_key_length),
    Field(examples=["DJ_STREAM_KEY"], json_schema_extra={"minLength": 1, "maxLength": 256}),
]
Genre = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Flag = Annotated[bool, Field(strict=True)]
Search = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class StreamIn(BaseModel):
    """`POST /v1/streams`: the DJ's SHOUTcast/Icecast source and how to present it, or
    (`source_type: push`) a mount the DJ's encoder sends audio to."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    source_type: Literal["pull", "push"] = Field(
        "pull",
        description="`pull`: the node relays the DJ's SHOUTcast/Icecast server "
        "(`shoutcast_url`, `mount`, `stream_key` required). `push`: the DJ's encoder (BUTT, "
        "Mixxx, OBS, ffmpeg, Liquidsoap) sends the audio to the node; the answer's `ingest` "
        "says where, with a generated source password shown once.",
    )
    shoutcast_url: SourceUrl | None = None
    mount: Mount | None = Field(
        None, description="Pull: the stream's path on the source. Push: optional, generated."
    )
    stream_key: StreamKey | None = None
    sid: int | None = Field(
        None, ge=1, le=INT4_MAX, strict=True, description="SHOUTcast v2 stream id (default 1)"
    )
    genre: Genre | None = Field(None, examples=["House"])
    description: Description | None = Field(None, examples=["Weekly house mix"])
    visibility: Visibility = "public"
    monetization_enabled: Flag = False

    @model_validator(mode="after")
    def _source_fields(self) -> StreamIn:
        if self.source_type == "pull":
            missing = [
                name
                for name in ("shoutcast_url", "mount", "stream_key")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"a pull stream needs {', '.join(missing)}")
        elif self.shoutcast_url is not None or self.stream_key is not None or self.sid is not None:
            raise ValueError("a push stream takes no shoutcast_url, stream_key or sid")
        return self


class Ingest(BaseModel):
    """Where a push stream's encoder connects (what a DJ types into BUTT): the Icecast
    source protocol (`SOURCE` or `PUT`), Basic auth `source:<password>`."""

    url: str = Field(examples=["icecast://radio.example.com:8000/live-1f2e3d4c"])
    host: str
    port: int
    mount: str
    username: Literal["source"] = "source"
    password: str = Field(description="Shown once; rotate it with `POST .../source-password`.")


class StreamCreated(BaseModel):
    stream_id: uuid.UUID
    status: Literal["registered"] = "registered"
    ingest: Ingest | None = Field(None, description="Push streams only.")


class StreamUpdate(BaseModel):
    """`PATCH /v1/streams/{stream_id}`: any non-empty subset; `genre`/`description` may be
    null to clear them. `changes()` keeps the order the client sent the fields in."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    genre: Genre | None = None
    description: Description | None = None
    visibility: Visibility | None = None
    monetization_enabled: Flag | None = None
    enabled: Flag | None = None
    _order: list[str] = PrivateAttr(default_factory=list)

    @field_validator("name", "visibility", "monetization_enabled", "enabled")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _keep_order(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> StreamUpdate:
        model: StreamUpdate = handler(data)
        if isinstance(data, dict):
            model._order = [name for name in data if name in cls.model_fields]
        if not model._order:
            fields = ", ".join(cls.model_fields)
            raise ValueError(f"Nothing to update: send at least one of {fields}")
        return model

    def changes(self) -> dict[str, Any]:
        """The fields sent, in request order, with their new values."""
        return {name: getattr(self, name) for name in self._order}


class StreamUpdated(BaseModel):
    stream_id: uuid.UUID
    updated_fields: list[str] = Field(examples=[["name", "visibility", "enabled"]])


class StreamListQuery(PageQuery):
    """`GET /v1/streams`: `mine=true` lists the caller's own streams, whatever their state;
    `on_air=true` only those whose source is connected now; `genre` one genre (any case);
    `q` a text search in the name, description and genre."""

    mine: bool = False
    on_air: bool = False
    genre: Genre | None = None
    q: Search | None = None


class StreamOut(BaseModel):
    """A stream as the directory and `GET /v1/streams/{stream_id}` show it (never its
    source URL or key: listeners go through this server, where the paywall is)."""

    stream_id: uuid.UUID
    name: str
    genre: str | None
    description: str | None
    visibility: Visibility
    monetization_enabled: bool
    #: Listening right now (MP3 connections + HLS sessions); 0 when the relay is down.
    listeners: int
    #: The relay is receiving the source's audio (as `relay_connected` in the status).
    on_air: bool
    #: Now playing (ICY title or the source's admin stats); null when unknown or off air.
    current_title: str | None = Field(examples=["Artist - Track"])
    live_mp3_url: str = Field(examples=["https://radio.example.com/v1/streams/{id}/live.mp3"])
    live_hls_url: str = Field(examples=["https://radio.example.com/v1/streams/{id}/live.m3u8"])
    owner_id: uuid.UUID
    server_kind: ServerKind
    enabled: bool
    created_at: datetime


class PlayUrls(BaseModel):
    """Links any player can open as they are, with no `Authorization` header (Safari's
    native HLS, VLC, `<audio>`): for a private or monetized stream each carries a signed
    `grant` that stops working at `expires_at` (or when the stream's access rules become
    stricter); fetch the stream again for fresh ones. Open streams' links never expire."""

    mp3: str = Field(examples=["https://radio.example.com/v1/streams/{id}/live.mp3?grant=…"])
    hls: str = Field(examples=["https://radio.example.com/v1/streams/{id}/live.m3u8?grant=…"])
    expires_at: datetime | None


class StreamDetail(StreamOut):
    """`GET /v1/streams/{stream_id}`: the metadata, plus `play_urls` when the caller may
    listen right now (null otherwise: disabled, or behind a subscription it lacks)."""

    play_urls: PlayUrls | None


NO_STREAMS = "No streams are live right now. DJs register one with POST /v1/streams."
#: `?mine=true` for a caller without streams (disabled ones count: they are listed).
NO_OWN_STREAMS = "You have not registered any streams yet. Register one with POST /v1/streams."


class StreamList(BaseModel):
    """US-9.1: `message` when the directory is empty, else null."""

    streams: list[StreamOut]
    page: int
    per_page: int
    total: int
    message: str | None = Field(default=None, examples=[None, NO_STREAMS, NO_OWN_STREAMS])


class HeartbeatIn(BaseModel):
    """`POST /v1/streams/{stream_id}/heartbeat` from an external relay, every 30 s."""

    model_config = ConfigDict(extra="forbid")

    listeners: int = Field(ge=0, le=INT4_MAX, strict=True, examples=[125])
    uptime_seconds: int = Field(ge=0, le=10**10, strict=True, examples=[8040])
    cpu_usage_percent: float | None = Field(None, ge=0, le=100, examples=[37.5])
    memory_usage_bytes: int | None = Field(None, ge=0, le=2**63 - 1, strict=True)
    current_title: str | None = Field(None, max_length=1024, examples=["Artist - Track"])
    bitrate_kbps: int | None = Field(None, ge=1, le=10_000, strict=True, examples=[128])


class HeartbeatOk(BaseModel):
    status: Literal["ok"] = "ok"


class StreamStatus(BaseModel):
    """Backlog US-2.5. Unknown figures are null, never made up."""

    stream_id: uuid.UUID
    name: str
    current_track: str | None = Field(examples=["Artist - Track"])
    bitrate: str | None = Field(examples=["128kbps"])
    listeners: int
    uptime: str | None = Field(examples=["2h 14m"])
    uptime_seconds: int | None
    relay_connected: bool
    last_heartbeat: datetime | None
    #: What `live.mp3` serves: `audio/mpeg` (MP3) or `audio/aac` (AAC in ADTS); null when
    #: no relay on this node has had audio yet (e.g. it runs on another node).
    content_type: str | None = Field(None, examples=["audio/aac"])


class AdMarker(BaseModel):
    model_config = ConfigDict(extra="forbid")

    position_seconds: int = Field(ge=0, le=INT4_MAX, strict=True, examples=[300])
    duration_seconds: int = Field(gt=0, le=86_400, strict=True, examples=[30])
    ad_type: AdType


class AdMarkersIn(BaseModel):
    """`POST /v1/streams/{stream_id}/ads`: replaces every marker of the stream."""

    model_config = ConfigDict(extra="forbid")

    ad_markers: list[AdMarker] = Field(min_length=1, max_length=100)


class AdMarkers(BaseModel):
    stream_id: uuid.UUID
    ad_markers: list[AdMarker]
