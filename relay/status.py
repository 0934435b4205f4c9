"""What the control API needs from the relays, without depending on how they work.

`RelayControl` is implemented by `relay.manager.RelayManager`; the streams service calls it
when a stream is created, changed, disabled or deleted, and reads live figures from it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

#: Where a stream's audio comes from: pulled from a SHOUTcast/Icecast server, or pushed to
#: the node by the DJ's encoder (`relay.ingest`).
ServerKind = Literal["shoutcast1", "shoutcast2", "icecast2", "push"]


@dataclass(frozen=True, slots=True)
class StreamSource:
    """Everything a relay needs to pull and present one stream."""

    stream_id: uuid.UUID
    source_url: str  # scheme://host:port of the DJ's server
    mount: str  # path of the stream on that server, e.g. "/live" or "/stream"
    server_kind: ServerKind
    sid: int | None  # SHOUTcast v2 stream id
    name: str
    genre: str | None
    description: str | None
    #: Public and free: its figures may carry its id in `/metrics`. Private and paid
    #: streams are counted together there, never named.
    listed: bool = False

    @property
    def pushed(self) -> bool:
        """The DJ's encoder sends the audio to the node (no source to pull)."""
        return self.server_kind == "push"


@dataclass(frozen=True, slots=True)
class RelaySnapshot:
    """Live figures of a relay running on this node."""

    connected: bool  # receiving audio from the source right now
    current_title: str | None  # last ICY StreamTitle, None until the source sent one
    bitrate_kbps: int | None  # from the MP3 frame headers (or icy-br), None until known
    listeners: int  # MP3 connections + active HLS sessions
    connected_since: datetime | None  # start of the current source connection (uptime)
    last_audio_at: datetime | None
    #: What listeners of the continuous stream get (`audio/mpeg`, `audio/aac`); None until
    #: the source first connected.
    content_type: str | None = None


class RelayControl(Protocol):
    async def ensure(self, source: StreamSource) -> None:
        """Start the relay for an enabled stream, or restart it if its source changed."""
        ...

    async def stop(self, stream_id: uuid.UUID) -> None:
        """Stop the relay and disconnect its listeners (stream disabled or deleted)."""
        ...

    async def disconnect_listeners(self, stream_id: uuid.UUID) -> None:
        """End the current MP3 listeners (and forget the HLS sessions) of a running relay
        whose access rules got stricter: players reconnect through the paywall."""
        ...

    def snapshot(self, stream_id: uuid.UUID) -> RelaySnapshot | None:
        """Live figures, or None when this node runs no relay for the stream."""
        ...


class NullRelayControl:
    """A `RelayControl` that runs no relays: for nodes (and tests) without the relay manager.
    Streams are registered and served metadata; live figures come from heartbeats only."""

    async def ensure(self, source: StreamSource) -> None:
        return None

    async def stop(self, stream_id: uuid.UUID) -> None:
        return None

    async def disconnect_listeners(self, stream_id: uuid.UUID) -> None:
        return None

    def snapshot(self, stream_id: uuid.UUID) -> RelaySnapshot | None:
        return None
