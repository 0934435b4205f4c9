"""HLS master playlists (RFC 8216 §4.3.4) for audio-only renditions. Sans-IO."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Variant:
    """One `#EXT-X-STREAM-INF` entry: a media playlist and what it costs to play."""

    uri: str
    bandwidth: int  # peak segment bit rate, bits/s (§4.3.4.2)
    average_bandwidth: int
    codecs: str | None  # RFC 6381, e.g. "mp4a.40.2"


def render_master_playlist(variants: Sequence[Variant]) -> str:
    """The master playlist text, variants ordered by bandwidth; ValueError when empty."""
    if not variants:
        raise ValueError("a master playlist needs at least one variant (§4.3.4.2)")
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in sorted(variants, key=lambda v: (v.bandwidth, v.uri)):
        if not v.uri or any(c in v.uri for c in "\r\n#") or v.bandwidth <= 0:
            raise ValueError(f"invalid variant {v!r} (§4.3.4.2)")
        # §4.3.4.2: BANDWIDTH is required; AVERAGE-BANDWIDTH and CODECS should be present.
        # Audio only, so no RESOLUTION.
        attributes = [f"BANDWIDTH={v.bandwidth}", f"AVERAGE-BANDWIDTH={v.average_bandwidth}"]
        if v.codecs:
            attributes.append(f'CODECS="{v.codecs}"')
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attributes))
        lines.append(v.uri)
    return "\n".join(lines) + "\n"


def parse_master_playlist(text: str) -> list[Variant]:
    """The variants of a master playlist as `render_master_playlist` writes them."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not an M3U8 playlist (§4.3.1.1)")
    variants: list[Variant] = []
    pending: dict[str, str] | None = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-STREAM-INF:"):
            pending = _attributes(line.partition(":")[2])
        elif not line.startswith("#") and pending is not None:
            variants.append(
                Variant(
                    uri=line,
                    bandwidth=int(pending["BANDWIDTH"]),
                    average_bandwidth=int(pending.get("AVERAGE-BANDWIDTH", "0")),
                    codecs=pending.get("CODECS"),
                )
            )
            pending = None
    return variants


def _attributes(text: str) -> dict[str, str]:
    # §4.2 attribute-list; quoted strings may hold commas.
    out: dict[str, str] = {}
    rest = text
    while rest:
        name, _, rest = rest.partition("=")
        if rest.startswith('"'):
            value, _, rest = rest[1:].partition('"')
            rest = rest.removeprefix(",")
        else:
            value, _, rest = rest.partition(",")
        out[name.strip()] = value
    return out
