"""Icecast 2.4's status JSON and playlist files, as widgets and players read them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from control.nowplaying.formats import icecast_status, m3u, pls
from control.nowplaying.schemas import NowPlayingStation, SongOut, StationLinks

START = datetime(2026, 12, 7, 4, 0, 0, tzinfo=UTC)


def station(name: str, title: str | None = "Artist - Song") -> NowPlayingStation:
    stream_id = uuid.uuid4()
    base = f"https://radio.example.com/v1/streams/{stream_id}"
    links = {k: f"{base}/{k}" for k in StationLinks.model_fields}
    song = SongOut(text=title, artist="Artist", title="Song", started_at=None) if title else None
    return NowPlayingStation(
        stream_id=stream_id,
        name=name,
        genre="House",
        description=None,
        monetization_enabled=False,
        listeners=3,
        listener_peak=5,
        bitrate_kbps=128,
        live_since=START,
        song=song,
        links=StationLinks(**{**links, "mp3": f"{base}/live.mp3", "station": base}),
    )


def test_status_json_has_icecast_24s_shape():
    one = station("Friday Night")
    stats = icecast_status([one], "radio.example.com", START, "mediaserver")["icestats"]
    assert stats["host"] == "radio.example.com"
    assert stats["server_start"] == "Mon, 07 Dec 2026 04:00:00 +0000"
    assert stats["server_start_iso8601"] == "2026-12-07T04:00:00+0000"
    source = stats["source"]  # one source: an object, as Icecast 2.4 writes it
    assert source == {
        "audio_info": "bitrate=128",
        "bitrate": 128,
        "genre": "House",
        "listener_peak": 5,
        "listeners": 3,
        "listenurl": one.links.mp3,
        "server_name": "Friday Night",
        "server_type": "audio/mpeg",
        "server_url": one.links.station,
        "stream_start": "Mon, 07 Dec 2026 04:00:00 +0000",
        "stream_start_iso8601": "2026-12-07T04:00:00+0000",
        "title": "Artist - Song",
        "dummy": None,
    }
    json.dumps(stats)  # serialisable as it is


def test_status_json_sources_are_absent_an_object_or_a_list():
    def sources(n: int) -> object:
        stations = [station(f"s{i}", title=None) for i in range(n)]
        return icecast_status(stations, "h", START, "x")["icestats"].get("source")

    assert sources(0) is None
    assert isinstance(sources(1), dict) and "title" not in sources(1)
    assert [s["server_name"] for s in sources(2)] == ["s0", "s1"]


def test_playlist_files():
    url = "https://radio.example.com/v1/streams/x/live.mp3"
    assert m3u("Friday\nNight", url) == f"#EXTM3U\n#EXTINF:-1,Friday Night\n{url}\n"
    assert pls("Friday Night", url) == (
        f"[playlist]\nNumberOfEntries=1\nFile1={url}\nTitle1=Friday Night\nLength1=-1\nVersion=2\n"
    )
