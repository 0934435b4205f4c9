"""What existing players, widgets and directories read, written from our now-playing
data: Icecast 2.4's `status-json.xsl` and `.m3u` / `.pls` playlist files. Pure: the time
comes in as an argument."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from control.nowplaying.schemas import NowPlayingStation

#: Icecast 2.4 writes times as RFC 822 dates (`%a, %d %b %Y %H:%M:%S %z`) and ISO 8601.
_RFC822 = "%a, %d %b %Y %H:%M:%S +0000"
_ISO8601 = "%Y-%m-%dT%H:%M:%S+0000"


def icecast_status(
    stations: list[NowPlayingStation], host: str, server_start: datetime, server_id: str
) -> dict[str, Any]:
    """`{"icestats": ...}` as Icecast 2.4's `/status-json.xsl` has it: `source` is absent
    with no stream, an object with one, a list with several (widgets written for Icecast
    check for exactly this); fields it would leave out when unset are left out."""
    stats: dict[str, Any] = {
        "admin": f"icemaster@{host}",
        "host": host,
        "location": "Earth",
        "server_id": server_id,
        "server_start": _utc(server_start).strftime(_RFC822),
        "server_start_iso8601": _utc(server_start).strftime(_ISO8601),
    }
    sources = [_source(station) for station in stations]
    if len(sources) == 1:
        stats["source"] = sources[0]
    elif sources:
        stats["source"] = sources
    return {"icestats": stats}


def _source(station: NowPlayingStation) -> dict[str, Any]:
    source: dict[str, Any] = {}
    if station.bitrate_kbps:
        source["audio_info"] = f"bitrate={station.bitrate_kbps}"
        source["bitrate"] = station.bitrate_kbps
    if station.genre:
        source["genre"] = station.genre
    source["listener_peak"] = station.listener_peak
    source["listeners"] = station.listeners
    source["listenurl"] = station.links.mp3
    if station.description:
        source["server_description"] = station.description
    source["server_name"] = station.name
    source["server_type"] = "audio/mpeg"
    source["server_url"] = station.links.station
    if station.live_since is not None:
        source["stream_start"] = _utc(station.live_since).strftime(_RFC822)
        source["stream_start_iso8601"] = _utc(station.live_since).strftime(_ISO8601)
    if station.song is not None:
        source["title"] = station.song.text
    source["dummy"] = None  # Icecast's XSLT ends every source with it
    return source


def m3u(name: str, url: str) -> str:
    """An extended M3U with one entry; `-1`: a live stream has no length."""
    return f"#EXTM3U\n#EXTINF:-1,{_line(name)}\n{url}\n"


def pls(name: str, url: str) -> str:
    """A PLS (SHOUTcast's playlist format, version 2) with one entry."""
    return (
        f"[playlist]\nNumberOfEntries=1\nFile1={url}\nTitle1={_line(name)}\nLength1=-1\nVersion=2\n"
    )


def _line(text: str) -> str:
    """One line of a playlist file: no line breaks from a DJ's stream name."""
    return " ".join(text.split())


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
