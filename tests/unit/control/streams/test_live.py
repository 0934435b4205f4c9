"""The live figures of a stream and its US-2.5 status, from a relay snapshot and the last
heartbeat, at a given time."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from control.streams.heartbeats import Heartbeat
from control.streams.live import OFFLINE, format_uptime, live_figures, status_report
from control.streams.queries import StreamRow
from mediaserver.errors import UpstreamUnavailable
from relay.status import RelaySnapshot

NOW = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
ROW = StreamRow(
    uuid.uuid4(), uuid.uuid4(), "Friday Night", "http://dj.example.com:8000", "/live",
    "icecast2", None, b"sealed", "House", None, "public", False, True,
    NOW - timedelta(days=1), NOW - timedelta(days=1), None,
)  # fmt: skip
BEAT = Heartbeat(
    at=NOW - timedelta(seconds=30), listeners=125, uptime_seconds=8040,
    current_title="Artist - Track", bitrate_kbps=128,
)  # fmt: skip
SNAPSHOT = RelaySnapshot(
    connected=True, current_title="Live - Title", bitrate_kbps=192, listeners=9,
    connected_since=NOW - timedelta(hours=2, minutes=14, seconds=5), last_audio_at=NOW,
)  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, None), (0, "0m"), (59, "0m"), (60, "1m"), (3599, "59m"), (8040, "2h 14m"),
     (90_000, "25h 0m")],
)  # fmt: skip
def test_uptime_reads_like_the_backlog(seconds, text):
    assert format_uptime(seconds) == text


def test_the_local_relay_snapshot_wins():
    figures = live_figures(SNAPSHOT, BEAT, NOW)
    assert (figures.listeners, figures.current_title, figures.bitrate_kbps) == (
        9,
        "Live - Title",
        192,
    )
    assert figures.connected and figures.uptime_seconds == 8045


def test_a_snapshot_without_title_falls_back_to_a_fresh_heartbeat():
    snapshot = replace(SNAPSHOT, current_title=None, bitrate_kbps=None, connected=False)
    figures = live_figures(snapshot, BEAT, NOW)
    assert figures.current_title == "Artist - Track" and figures.bitrate_kbps == 128
    assert figures.connected  # the heartbeat is less than 2 minutes old
    assert figures.uptime_seconds == 8070  # the heartbeat's uptime, 30 s on
    stale = replace(BEAT, at=NOW - timedelta(minutes=3))
    assert live_figures(snapshot, stale, NOW).connected is False
    assert live_figures(snapshot, stale, NOW).current_title is None


def test_heartbeats_count_for_two_minutes_then_nothing_is_made_up():
    on_time = live_figures(None, replace(BEAT, at=NOW - timedelta(minutes=2)), NOW)
    assert on_time.connected and on_time.listeners == 125 and on_time.uptime_seconds == 8160
    late = replace(BEAT, at=NOW - timedelta(minutes=2, seconds=1))
    assert live_figures(None, late, NOW) == OFFLINE
    assert live_figures(None, None, NOW) == OFFLINE


def test_the_peak_is_the_heartbeats_or_more_listeners_now():
    peaked = replace(BEAT, listener_peak=300)
    assert live_figures(None, peaked, NOW).listener_peak == 300
    assert live_figures(None, BEAT, NOW).listener_peak == 125  # a beat without one: its count
    assert live_figures(SNAPSHOT, peaked, NOW).listener_peak == 300
    crowd = replace(SNAPSHOT, listeners=450)  # more now than the last beat saw
    assert live_figures(crowd, peaked, NOW).listener_peak == 450
    assert OFFLINE.listener_peak == 0


def test_status_report_of_a_live_stream():
    status = status_report(ROW, None, BEAT, NOW)
    assert status.model_dump() == {
        "stream_id": ROW.stream_id,
        "name": "Friday Night",
        "current_track": "Artist - Track",
        "bitrate": "128kbps",
        "listeners": 125,
        "uptime": "2h 14m",
        "uptime_seconds": 8070,
        "relay_connected": True,
        "last_heartbeat": BEAT.at,
        "content_type": None,  # no relay on this node: not known here
    }


def test_status_names_what_the_local_relay_serves():
    aac = replace(SNAPSHOT, content_type="audio/aac")
    assert status_report(ROW, aac, BEAT, NOW).content_type == "audio/aac"


def test_offline_for_more_than_five_minutes_is_503():
    five = replace(BEAT, at=NOW - timedelta(minutes=5))
    status = status_report(ROW, None, five, NOW)
    assert not status.relay_connected and status.current_track is None and status.listeners == 0
    with pytest.raises(UpstreamUnavailable) as down:
        status_report(ROW, None, replace(BEAT, at=NOW - timedelta(minutes=5, seconds=1)), NOW)
    assert down.value.body()["error"] == "Relay has been offline for more than 5 minutes"
    with pytest.raises(UpstreamUnavailable):
        status_report(ROW, None, None, NOW)  # registered a day ago, never a heartbeat


def test_a_new_or_reenabled_stream_gets_five_minutes_to_connect():
    fresh_row = replace(ROW, updated_at=NOW - timedelta(minutes=4))
    assert status_report(fresh_row, None, None, NOW).relay_connected is False
    old_beat = replace(BEAT, at=NOW - timedelta(hours=3))
    assert status_report(fresh_row, None, old_beat, NOW).last_heartbeat == old_beat.at


def test_a_disabled_stream_is_offline_without_503():
    status = status_report(replace(ROW, enabled=False), SNAPSHOT, None, NOW)
    assert status.relay_connected is False and status.listeners == 0 and status.uptime is None
