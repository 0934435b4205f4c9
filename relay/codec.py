"""The audio codecs a live stream may carry, relayed as they are (no transcoding): MP3 and
AAC in ADTS. Each names its content types, its frame reader and how HLS declares it.

The hub, the listeners and the live HLS packager only see `AudioFrame`s: whole frames with
their duration and a header with the format; which codec they are is told by `Codec`.
Everything else (Ogg Vorbis/Opus, FLAC, raw AAC in MP4, ...) is refused, at registration
and at push ingest, with the content type named (`unsupported_type`).

A codec core like `relay.mp3` and `relay.adts`: no asyncio, aiohttp or av here.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

from relay.adts import AdtsFrameReader
from relay.mp3 import Mp3FrameReader


class FrameFormat(Protocol):
    """What the hub and the packager read from a frame header."""

    @property
    def sample_rate(self) -> int: ...
    @property
    def samples_per_frame(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def bitrate_kbps(self) -> int: ...


class AudioFrame(Protocol):
    """One whole compressed audio frame (`relay.mp3.Frame`, `relay.adts.AdtsFrame`)."""

    @property
    def header(self) -> FrameFormat: ...
    @property
    def data(self) -> bytes: ...
    @property
    def duration(self) -> float: ...


class FrameReader(Protocol):
    """A sans-IO frame parser (`Mp3FrameReader`, `AdtsFrameReader`)."""

    def feed(self, data: bytes) -> Sequence[AudioFrame]: ...


class Codec(enum.Enum):
    """A codec a live stream may carry. The value is the content type listeners get."""

    MP3 = "audio/mpeg"
    AAC = "audio/aac"

    @property
    def content_type(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        """A short name for status and logs: `mp3`, `aac`."""
        return self.name.lower()

    @property
    def ts_codec(self) -> str:
        """The PyAV/libavformat codec name the MPEG-TS muxer is given."""
        return "mp3" if self is Codec.MP3 else "aac"

    def reader(self) -> FrameReader:
        return Mp3FrameReader() if self is Codec.MP3 else AdtsFrameReader()


#: Content types (lower case, no parameters) each codec arrives under, as SHOUTcast,
#: Icecast and encoders send them. `audio/aacp` is AAC+ (HE-AAC) in ADTS.
CONTENT_TYPES: dict[str, Codec] = {
    "audio/mpeg": Codec.MP3,
    "audio/mp3": Codec.MP3,
    "audio/mpeg3": Codec.MP3,
    "audio/x-mpeg": Codec.MP3,
    "audio/aac": Codec.AAC,
    "audio/aacp": Codec.AAC,
    "audio/x-aac": Codec.AAC,
    "audio/x-aacp": Codec.AAC,
}
#: What error messages list as accepted.
ACCEPTED = "MP3 (audio/mpeg) or AAC in ADTS (audio/aac, audio/aacp)"


def media_type(content_type: str | None) -> str:
    """`Content-Type: Audio/AAC; charset=x` → `audio/aac`; a missing one is MP3, as
    SHOUTcast v1 servers (which send none) always meant."""
    return (content_type or "audio/mpeg").split(";")[0].strip().lower() or "audio/mpeg"


def codec_for(content_type: str | None) -> Codec | None:
    """The codec of a stream sent with this `Content-Type`, None when we do not relay it."""
    return CONTENT_TYPES.get(media_type(content_type))


def sniff(data: bytes) -> str | None:
    """The container the first bytes of a stream are in, for a refusal that names it when
    the content type was vague or wrong: `application/ogg`, `audio/flac`, or None. A live
    Ogg stream may be joined mid-page: its next page's capture pattern "OggS" (RFC 3533
    §6) is then a few kilobytes in."""
    if b"OggS" in data:
        return "application/ogg"
    if data.startswith(b"fLaC"):
        return "audio/flac"
    return None


def unsupported_type(content_type: str | None) -> str:
    """The refusal's text for a stream we do not relay."""
    return f"Unsupported stream type {media_type(content_type)!r}: {ACCEPTED} only"
