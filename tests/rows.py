"""Stream and playlist rows as their queries return them, for unit tests of the rules that
read them (access, grants): a private, free, enabled item by default; pass the fields that
matter to the test."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from control.playlists.queries import PlaylistRow
from control.streams.queries import StreamRow

CREATED = datetime(2025, 6, 10, 12, tzinfo=UTC)


def stream_row(**changes: Any) -> StreamRow:
    """A stream (new ids unless given) with `changes` applied."""
    row = StreamRow(
        stream_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        name="Members Only",
        source_url="http://127.0.0.1:8000",
        mount="/live",
        server_kind="icecast2",
        sid=None,
        stream_key_enc=b"",
        genre=None,
        description=None,
        visibility="private",
        monetization_enabled=False,
        enabled=True,
        created_at=CREATED,
        updated_at=CREATED,
        deleted_at=None,
    )
    return replace(row, **changes)


def playlist_row(**changes: Any) -> PlaylistRow:
    """A ready one-track playlist (new ids unless given) with `changes` applied."""
    row = PlaylistRow(
        playlist_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        title="Chill",
        description="",
        visibility="private",
        monetization_enabled=False,
        hls_ready=True,
        manifest_key=None,
        created_at=CREATED,
        updated_at=CREATED,
        track_count=1,
    )
    return replace(row, **changes)
