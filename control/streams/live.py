"""What is known about a stream right now, from the local relay's snapshot and the last
heartbeat (backlog US-2.5). Pure functions: the time comes in as an argument.

Precedence: the snapshot of a relay running on this node, else the last heartbeat while it
is fresh (≤ 2 minutes old — it may come from another node or an external relay), else
nothing: 0 listeners and null figures, never invented values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from control.streams.heartbeats import Heartbeat
from control.streams.queries import StreamRow
from control.streams.schemas import StreamStatus
from mediaserver.errors import UpstreamUnavailable
from relay.status import RelaySnapshot

#: US-2.5: the relay counts as connected while its last heartbeat is at most this old.
CONNECTED_WINDOW = timedelta(minutes=2)
#: US-2.5: past this without a sign of life the status route answers 503.
OFFLINE_LIMIT = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class LiveFigures:
    connected: bool
    listeners: int
    current_title: str | None
    bitrate_kbps: int | None
    uptime_seconds: int | None
    #: Most listeners at once since the source connected (Icecast's `listener_peak`), as
    #: the relay's heartbeats saw them (one goes out within seconds of a change).
    listener_peak: int = 0


OFFLINE = LiveFigures(False, 0, None, None, None)


def fresh(beat: Heartbeat | None, now: datetime) -> Heartbeat | None:
    """The heartbeat if it is recent enough to describe the relay now."""
    return beat if beat is not None and now - beat.at <= CONNECTED_WINDOW else None


def live_figures(
    snapshot: RelaySnapshot | None, beat: Heartbeat | None, now: datetime
) -> LiveFigures:
    recent = fresh(beat, now)
    # Uptime grows between heartbeats: the figure sent plus the time since it was sent.
    beat_uptime = recent.uptime_seconds + _seconds(now - recent.at) if recent else None
    if snapshot is None:
        if recent is None:
            return OFFLINE
        return LiveFigures(
            True,
            recent.listeners,
            recent.current_title,
            recent.bitrate_kbps,
            beat_uptime,
            max(recent.listeners, recent.listener_peak or 0),
        )
    uptime = beat_uptime
    if snapshot.connected and snapshot.connected_since is not None:
        uptime = _seconds(now - snapshot.connected_since)
    return LiveFigures(
        connected=snapshot.connected or recent is not None,
        listeners=snapshot.listeners,
        current_title=snapshot.current_title or (recent.current_title if recent else None),
        bitrate_kbps=snapshot.bitrate_kbps or (recent.bitrate_kbps if recent else None),
        uptime_seconds=uptime if snapshot.connected or recent is not None else None,
        listener_peak=max(snapshot.listeners, (recent.listener_peak or 0) if recent else 0),
    )


def status_report(
    row: StreamRow, snapshot: RelaySnapshot | None, beat: Heartbeat | None, now: datetime
) -> StreamStatus:
    """The status of an existing stream; raises `UpstreamUnavailable` (503) when an enabled
    stream's relay has shown no sign of life for `OFFLINE_LIMIT`. The grace period starts at
    the last heartbeat, or at the stream's last change (registration, re-enabling) when that
    is later, so a stream that was just (re)enabled gets 5 minutes to connect."""
    figures = live_figures(snapshot, beat, now) if row.enabled else OFFLINE
    status = StreamStatus(
        stream_id=row.stream_id,
        name=row.name,
        current_track=figures.current_title,
        bitrate=f"{figures.bitrate_kbps}kbps" if figures.bitrate_kbps else None,
        listeners=figures.listeners,
        uptime=format_uptime(figures.uptime_seconds),
        uptime_seconds=figures.uptime_seconds,
        relay_connected=figures.connected,
        last_heartbeat=beat.at if beat is not None else None,
        content_type=snapshot.content_type if snapshot is not None and row.enabled else None,
    )
    if row.enabled and not figures.connected:
        last_sign = max(beat.at, row.updated_at) if beat is not None else row.updated_at
        if now - last_sign > OFFLINE_LIMIT:
            raise UpstreamUnavailable(
                "Relay has been offline for more than 5 minutes",
                details=status.model_dump(mode="json"),
            )
    return status


def format_uptime(seconds: int | None) -> str | None:
    """`2h 14m`, or `14m` under an hour (`0m` under a minute); hours keep counting past 24."""
    if seconds is None:
        return None
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def _seconds(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds()))
