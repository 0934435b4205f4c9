"""Response bodies of the now-playing routes: song history, the stations on air, and the
events of the live feeds."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from control.schemas import PageQuery


class SongOut(BaseModel):
    """A title as the source sent it (`text`), split into `artist` and `title` when it
    reads "Artist - Title" (else `artist` is null and `title` is the whole text)."""

    text: str = Field(examples=["Daft Punk - Around the World"])
    artist: str | None = Field(examples=["Daft Punk"])
    title: str = Field(examples=["Around the World"])
    #: Null when the history does not know it (a title reported by an external relay).
    started_at: datetime | None
    #: Null while it plays.
    ended_at: datetime | None = None


class SongHistory(BaseModel):
    """`GET /v1/streams/{stream_id}/history`, newest first."""

    stream_id: uuid.UUID
    songs: list[SongOut]
    page: int
    per_page: int
    total: int


HistoryQuery = PageQuery


class EventsQuery(BaseModel):
    """`?max_events=N` ends the response after N events, the opening snapshot included:
    for scripts and tools that want the state now (1) or the next change (2) rather than a
    never-ending feed. An `EventSource` sends none."""

    model_config = ConfigDict(extra="forbid")

    max_events: int | None = Field(None, ge=1, le=10_000, examples=[2])


class IcecastSource(BaseModel):
    """One source of Icecast 2.4's status JSON; fields Icecast leaves out when unset are
    left out here too."""

    audio_info: str | None = Field(None, examples=["bitrate=128"])
    bitrate: int | None = Field(None, examples=[128])
    genre: str | None = Field(None, examples=["House"])
    listener_peak: int
    listeners: int
    listenurl: str = Field(examples=["https://radio.example.com/v1/streams/{id}/live.mp3"])
    server_description: str | None = None
    server_name: str = Field(examples=["Friday Night"])
    server_type: str = Field(examples=["audio/mpeg"])
    server_url: str
    stream_start: str | None = Field(None, examples=["Mon, 07 Dec 2026 04:00:00 +0000"])
    stream_start_iso8601: str | None = Field(None, examples=["2026-12-07T04:00:00+0000"])
    title: str | None = Field(None, examples=["Artist - Track"])
    dummy: None = None


class IceStats(BaseModel):
    admin: str = Field(examples=["icemaster@radio.example.com"])
    host: str = Field(examples=["radio.example.com"])
    location: str = Field(examples=["Earth"])
    server_id: str
    server_start: str = Field(examples=["Mon, 07 Dec 2026 04:00:00 +0000"])
    server_start_iso8601: str = Field(examples=["2026-12-07T04:00:00+0000"])
    #: Absent with no stream on air, an object with one, a list with several.
    source: IcecastSource | list[IcecastSource] | None = None


class IcecastStatus(BaseModel):
    """`/status-json.xsl`, as Icecast 2.4 writes it."""

    icestats: IceStats


class StationLinks(BaseModel):
    """Where to go from a station: its metadata, status, history and live feed, and the
    listen links (open as they are for a free stream; a paid one needs a subscription)."""

    station: str
    status: str
    history: str
    events: str
    mp3: str
    hls: str
    m3u: str
    pls: str


class NowPlayingStation(BaseModel):
    stream_id: uuid.UUID
    name: str
    genre: str | None
    description: str | None
    #: Listening needs a subscription to the DJ's plans.
    monetization_enabled: bool
    #: Across the cluster: the figure of the node that relays the stream.
    listeners: int
    #: Most listeners at once since the source connected.
    listener_peak: int
    bitrate_kbps: int | None
    #: When the source connected (this run of the relay).
    live_since: datetime | None
    #: Null when the source sends no title.
    song: SongOut | None
    links: StationLinks


class NowPlaying(BaseModel):
    """`GET /v1/nowplaying`: every public stream on air now, most listened first."""

    stations: list[NowPlayingStation]
    generated_at: datetime
