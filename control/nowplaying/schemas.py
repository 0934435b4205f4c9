"""Response bodies of the now-playing routes: song history, the stations on air, and the
events of the live feeds."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

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
