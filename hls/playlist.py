"""HLS media playlists (RFC 8216): model, renderer, minimal parser and the live segment window.

Sans-IO: nothing here does I/O or reads the clock; dates come in as arguments. Section
numbers (§) are those of RFC 8216.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, TypedDict

PlaylistType = Literal["VOD", "EVENT"]
_PLAYLIST_TYPES: dict[str, PlaylistType] = {"VOD": "VOD", "EVENT": "EVENT"}
_HEX_SEQUENCE = re.compile(r"0[xX][0-9A-Fa-f]+")
# §4.2 attribute-list: AttributeName=AttributeValue, comma-separated; quoted strings hold no ".
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",]*)(?:,|$)')


@dataclass(frozen=True, slots=True)
class DateRange:
    """A time interval with attributes, `#EXT-X-DATERANGE` (§4.3.2.7), e.g. an ad break."""

    id: str
    start_date: datetime
    duration: float | None = None
    planned_duration: float | None = None
    scte35_out: str | None = None  # hexadecimal-sequence, e.g. "0xFC30..."
    scte35_in: str | None = None
    klass: str | None = None  # the CLASS attribute (`class` is a keyword)


@dataclass(frozen=True, slots=True)
class Segment:
    """One media segment: its URI line and the tags that apply to it (§4.3.2)."""

    uri: str
    duration: float
    program_date_time: datetime | None = None
    discontinuity: bool = False
    title: str = ""
    cue_out: float | None = None  # `#EXT-X-CUE-OUT:DURATION=` (SCTE-35 ad-break convention)
    cue_in: bool = False
    dateranges: tuple[DateRange, ...] = ()


def segment_record(segment: Segment) -> dict[str, Any]:
    """`segment` as JSON-ready values (its URI left out: live segments are named by their
    sequence number), for another process to rebuild with `segment_of`."""
    record: dict[str, Any] = {
        "duration": segment.duration,
        "program_date_time": _iso(segment.program_date_time),
        "discontinuity": segment.discontinuity,
        "title": segment.title,
        "cue_out": segment.cue_out,
        "cue_in": segment.cue_in,
        "dateranges": [
            {**{f.name: getattr(d, f.name) for f in fields(d)}, "start_date": _iso(d.start_date)}
            for d in segment.dateranges
        ],
    }
    return record


def segment_of(record: dict[str, Any]) -> Segment:
    """The segment `segment_record` described."""
    ranges = tuple(
        DateRange(**{**d, "start_date": datetime.fromisoformat(d["start_date"])})
        for d in record.get("dateranges", ())
    )
    started = record.get("program_date_time")
    return Segment(
        uri="",
        duration=float(record["duration"]),
        program_date_time=datetime.fromisoformat(started) if started else None,
        discontinuity=bool(record.get("discontinuity")),
        title=str(record.get("title", "")),
        cue_out=record.get("cue_out"),
        cue_in=bool(record.get("cue_in")),
        dateranges=ranges,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class _SegmentTags(TypedDict, total=False):
    """The tags of the segment being parsed, read before its URI line."""

    duration: float
    title: str
    program_date_time: datetime
    discontinuity: bool
    cue_out: float
    cue_in: bool
    dateranges: tuple[DateRange, ...]


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    """A media playlist (§4.3.3). Parsed playlists hold their segments in a tuple."""

    target_duration: int
    media_sequence: int
    segments: Sequence[Segment]
    discontinuity_sequence: int = 0
    version: int = 3
    playlist_type: PlaylistType | None = None
    endlist: bool = False
    independent_segments: bool = True


def render_media_playlist(p: MediaPlaylist) -> str:
    """The playlist as M3U8 text; ValueError when it would break RFC 8216."""
    _check_playlist(p)
    lines = [
        "#EXTM3U",  # §4.3.1.1
        f"#EXT-X-VERSION:{p.version}",  # §4.3.1.2
        f"#EXT-X-TARGETDURATION:{p.target_duration}",  # §4.3.3.1
        f"#EXT-X-MEDIA-SEQUENCE:{p.media_sequence}",  # §4.3.3.2
    ]
    if p.discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{p.discontinuity_sequence}")  # §4.3.3.3
    if p.playlist_type is not None:
        lines.append(f"#EXT-X-PLAYLIST-TYPE:{p.playlist_type}")  # §4.3.3.5
    if p.independent_segments:
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")  # §4.3.5.1
    for segment in p.segments:
        lines.extend(_segment_lines(segment))
    if p.endlist:
        lines.append("#EXT-X-ENDLIST")  # §4.3.3.4
    return "\n".join(lines) + "\n"


def _segment_lines(s: Segment) -> Iterator[str]:
    if s.discontinuity:
        yield "#EXT-X-DISCONTINUITY"  # §4.3.2.3
    if s.program_date_time is not None:
        yield f"#EXT-X-PROGRAM-DATE-TIME:{_date_time(s.program_date_time)}"  # §4.3.2.6
    for daterange in s.dateranges:
        yield _daterange_line(daterange)
    # CUE-IN first: one segment may end an ad break and start the next one.
    if s.cue_in:
        yield "#EXT-X-CUE-IN"
    if s.cue_out is not None:
        yield f"#EXT-X-CUE-OUT:DURATION={_decimal(s.cue_out)}"
    # §4.3.2.1: the title runs to the end of the line (commas are fine); line breaks must go.
    title = " ".join(s.title.splitlines())
    yield f"#EXTINF:{_extinf(s.duration)},{title}"
    yield s.uri


def _daterange_line(r: DateRange) -> str:
    # §4.3.2.7: ID, CLASS, START-DATE are quoted-strings; DURATION, PLANNED-DURATION are
    # decimal-floating-point; SCTE35-* are hexadecimal-sequences (§4.2).
    attributes = [f'ID="{_quoted(r.id)}"']
    if r.klass is not None:
        attributes.append(f'CLASS="{_quoted(r.klass)}"')
    attributes.append(f'START-DATE="{_date_time(r.start_date)}"')
    if r.duration is not None:
        attributes.append(f"DURATION={_decimal(r.duration)}")
    if r.planned_duration is not None:
        attributes.append(f"PLANNED-DURATION={_decimal(r.planned_duration)}")
    if r.scte35_out is not None:
        attributes.append(f"SCTE35-OUT={_hex_sequence(r.scte35_out)}")
    if r.scte35_in is not None:
        attributes.append(f"SCTE35-IN={_hex_sequence(r.scte35_in)}")
    return "#EXT-X-DATERANGE:" + ",".join(attributes)


def _check_playlist(p: MediaPlaylist) -> None:
    if p.version < 3:
        raise ValueError("decimal EXTINF durations need EXT-X-VERSION 3 or more (§7)")
    if p.target_duration < 1 or p.media_sequence < 0 or p.discontinuity_sequence < 0:
        raise ValueError("target duration must be positive and sequence numbers non-negative")
    if p.playlist_type is not None and p.playlist_type not in _PLAYLIST_TYPES:
        raise ValueError(f"EXT-X-PLAYLIST-TYPE must be VOD or EVENT, not {p.playlist_type!r}")
    for s in p.segments:
        if not s.uri or s.uri.startswith("#") or "\r" in s.uri or "\n" in s.uri:
            raise ValueError(f"invalid segment URI {s.uri!r} (§4.1)")
        check_segment_duration(s.duration, p.target_duration)
    has_date = any(s.program_date_time is not None for s in p.segments)
    if not has_date and any(s.dateranges for s in p.segments):
        raise ValueError("EXT-X-DATERANGE needs an EXT-X-PROGRAM-DATE-TIME (§4.3.2.7)")


def check_segment_duration(duration: float, target_duration: int) -> None:
    """§4.3.3.1: the EXTINF duration, rounded to the nearest integer, must not exceed the
    target duration. Checked on the rendered 3-decimal value, which is what clients see."""
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"segment duration must be a finite non-negative number, not {duration}")
    rounded = Decimal(_extinf(duration)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if rounded > target_duration:
        raise ValueError(
            f"segment duration {duration:.3f} s exceeds EXT-X-TARGETDURATION {target_duration} "
            "(§4.3.3.1)"
        )


def _extinf(duration: float) -> str:
    return f"{duration:.3f}"


def _decimal(value: float) -> str:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"durations must be finite and non-negative, not {value}")
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _quoted(value: str) -> str:
    if any(c in value for c in '"\r\n'):
        raise ValueError(f"a quoted-string cannot hold a double quote, CR or LF: {value!r} (§4.2)")
    return value


def _hex_sequence(value: str) -> str:
    text = value if value[:2] in ("0x", "0X") else "0x" + value
    if not _HEX_SEQUENCE.fullmatch(text):
        raise ValueError(f"not a hexadecimal-sequence: {value!r} (§4.2)")
    return text


def _date_time(value: datetime) -> str:
    # §4.3.2.6: ISO 8601 with milliseconds and a time zone; "Z" for UTC.
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("date-times in playlists need a time zone (§4.3.2.6)")
    text = value.isoformat(timespec="milliseconds")
    return text[: -len("+00:00")] + "Z" if offset == timedelta(0) else text


def parse_media_playlist(text: str) -> MediaPlaylist:
    """The tags render_media_playlist writes, read back; others are ignored as §6.3.1 asks."""
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not an M3U8 playlist: the first line must be #EXTM3U (§4.3.1.1)")
    header: dict[str, str] = {}
    segments: list[Segment] = []
    pending: _SegmentTags = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line or (line.startswith("#") and not line.startswith("#EXT")):
            continue  # blank lines and comments (§4.1)
        if not line.startswith("#"):
            if "duration" not in pending:
                raise ValueError(f"line {number}: segment {line!r} has no EXTINF (§4.3.2.1)")
            segments.append(Segment(uri=line, **pending))
            pending = {}
            continue
        name, _, value = line[1:].partition(":")
        if name not in _SEGMENT_TAGS:
            header[name] = value
            continue
        try:
            _SEGMENT_TAGS[name](value, pending)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"line {number}: malformed {name}: {exc}") from exc
    if "EXT-X-TARGETDURATION" not in header:
        raise ValueError("EXT-X-TARGETDURATION is required (§4.3.3.1)")
    playlist_type = header.get("EXT-X-PLAYLIST-TYPE")
    if playlist_type is not None and playlist_type not in _PLAYLIST_TYPES:
        raise ValueError(f"unknown EXT-X-PLAYLIST-TYPE {playlist_type!r}")
    return MediaPlaylist(
        target_duration=int(header["EXT-X-TARGETDURATION"]),
        media_sequence=int(header.get("EXT-X-MEDIA-SEQUENCE", "0")),
        segments=tuple(segments),
        discontinuity_sequence=int(header.get("EXT-X-DISCONTINUITY-SEQUENCE", "0")),
        version=int(header.get("EXT-X-VERSION", "1")),
        playlist_type=None if playlist_type is None else _PLAYLIST_TYPES[playlist_type],
        endlist="EXT-X-ENDLIST" in header,
        independent_segments="EXT-X-INDEPENDENT-SEGMENTS" in header,
    )


def _parse_extinf(value: str, pending: _SegmentTags) -> None:
    duration, _, title = value.partition(",")
    pending["duration"] = float(duration)
    pending["title"] = title


def _parse_daterange(value: str, pending: _SegmentTags) -> None:
    attributes = {name: raw.strip('"') for name, raw in _ATTRIBUTE.findall(value)}

    def number(name: str) -> float | None:
        return float(attributes[name]) if name in attributes else None

    daterange = DateRange(
        id=attributes["ID"],
        start_date=datetime.fromisoformat(attributes["START-DATE"]),
        duration=number("DURATION"),
        planned_duration=number("PLANNED-DURATION"),
        scte35_out=attributes.get("SCTE35-OUT"),
        scte35_in=attributes.get("SCTE35-IN"),
        klass=attributes.get("CLASS"),
    )
    pending["dateranges"] = (*pending.get("dateranges", ()), daterange)


def _parse_cue_out(value: str, pending: _SegmentTags) -> None:
    # Both "#EXT-X-CUE-OUT:DURATION=30" and the older bare "#EXT-X-CUE-OUT:30" occur.
    pending["cue_out"] = float(value.removeprefix("DURATION=")) if value else 0.0


def _parse_program_date_time(value: str, pending: _SegmentTags) -> None:
    pending["program_date_time"] = datetime.fromisoformat(value)


def _parse_discontinuity(_value: str, pending: _SegmentTags) -> None:
    pending["discontinuity"] = True


def _parse_cue_in(_value: str, pending: _SegmentTags) -> None:
    pending["cue_in"] = True


_SEGMENT_TAGS: dict[str, Callable[[str, _SegmentTags], None]] = {
    "EXTINF": _parse_extinf,
    "EXT-X-DISCONTINUITY": _parse_discontinuity,
    "EXT-X-PROGRAM-DATE-TIME": _parse_program_date_time,
    "EXT-X-DATERANGE": _parse_daterange,
    "EXT-X-CUE-OUT": _parse_cue_out,
    "EXT-X-CUE-IN": _parse_cue_in,
}
