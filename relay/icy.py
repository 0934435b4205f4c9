"""ICY (SHOUTcast/Icecast) in-band metadata: a sans-IO demuxer, the metadata block codec and
the interleaver that builds what an ICY listener receives.

Wire format: the server announces `icy-metaint: N`; after every N audio bytes comes one
length byte L and L × 16 bytes of NUL-padded metadata text such as
`StreamTitle='Artist - Title';StreamUrl='http://…';`. L = 0 means "no change this time".

A codec core shared by `relay/` and `hls/`, which may import it by design (as it does
`relay.mp3`): it imports nothing from either package, nor asyncio, aiohttp or av, and never
reads the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BLOCK_UNIT = 16  # SHOUTcast: length byte × 16
_MAX_BLOCK = 255 * _BLOCK_UNIT
_NO_METADATA = b"\x00"
_KEY_VALUE = re.compile(r"[\s;]*([A-Za-z_][A-Za-z0-9_.-]*)=")
# A quoted value ends at `';` followed by the next `key=`, or at `'` (`;` optional) at the end.
_QUOTED_END = re.compile(r"';(?=\s*[A-Za-z_][A-Za-z0-9_.-]*=)|';?\s*\Z")


@dataclass(frozen=True, slots=True)
class Audio:
    """Audio bytes with the metadata removed."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Metadata:
    """One non-empty metadata block: `raw` as received (NUL padding included), and its fields."""

    raw: bytes
    fields: dict[str, str]

    @property
    def title(self) -> str | None:
        """The StreamTitle field, if present."""
        return self.fields.get("StreamTitle")


class IcyDemuxer:
    """Push parser splitting an ICY stream into `Audio` and `Metadata` events.

    With `metaint` None or 0 every byte is audio. Any chunking of the input yields the same
    concatenated audio and the same `Metadata` events; audio pieces of one `feed()` call that
    are only separated by empty (L = 0) blocks are merged into one `Audio` event.
    """

    def __init__(self, metaint: int | None) -> None:
        if metaint is not None and metaint < 0:
            raise ValueError(f"metaint must be >= 0, got {metaint}")
        self.metaint = metaint or 0
        self._audio_left = self.metaint  # audio bytes before the next length byte
        self._meta_left = 0  # metadata bytes still to read, once the length byte is seen
        self._meta = bytearray()

    def feed(self, data: bytes) -> list[Audio | Metadata]:
        """Consume `data`; return the events it completes, in stream order."""
        if not self.metaint:
            return [Audio(bytes(data))] if data else []
        events: list[Audio | Metadata] = []
        audio: list[memoryview] = []
        view = memoryview(data)
        pos, end = 0, len(view)
        while pos < end:
            if self._audio_left:
                n = min(self._audio_left, end - pos)
                audio.append(view[pos : pos + n])
                self._audio_left -= n
                pos += n
            elif not self._meta_left and not self._meta:
                self._meta_left = view[pos] * _BLOCK_UNIT  # the length byte
                pos += 1
                if not self._meta_left:
                    self._audio_left = self.metaint
            else:
                n = min(self._meta_left, end - pos)
                self._meta += view[pos : pos + n]
                self._meta_left -= n
                pos += n
                if not self._meta_left:
                    raw = bytes(self._meta)
                    self._meta.clear()
                    self._audio_left = self.metaint
                    if audio:
                        events.append(Audio(b"".join(audio)))
                        audio.clear()
                    events.append(Metadata(raw, parse_metadata(raw)))
        if audio:
            events.append(Audio(b"".join(audio)))
        return events


def _decode(raw: bytes) -> str:
    """UTF-8, decoding each invalid byte as latin-1 (many SHOUTcast sources send latin-1)."""
    parts: list[str] = []
    while True:
        try:
            parts.append(raw.decode("utf-8"))
            return "".join(parts)
        except UnicodeDecodeError as e:
            parts.append(raw[: e.start].decode("utf-8"))
            parts.append(raw[e.start : e.end].decode("latin-1"))
            raw = raw[e.end :]


def parse_metadata(block: bytes) -> dict[str, str]:
    """Parse `StreamTitle='…';StreamUrl='…';` into a dict.

    Values may contain `;` and `'`: a quoted value only ends at `';` followed by another
    `key=`, or at the end of the block (NUL padding and whitespace stripped). Unquoted values
    end at the next `;`. Text that does not look like `key=` ends the parse.
    """
    text = _decode(block.rstrip(b"\x00")).strip()
    fields: dict[str, str] = {}
    pos = 0
    while m := _KEY_VALUE.match(text, pos):
        key, pos = m.group(1), m.end()
        if text.startswith("'", pos):
            end = _QUOTED_END.search(text, pos + 1)
            stop = end.start() if end else len(text)
            fields[key] = text[pos + 1 : stop]
            pos = end.end() if end else len(text)
        else:
            stop = text.find(";", pos)
            stop = len(text) if stop < 0 else stop
            fields[key] = text[pos:stop].strip()
            pos = stop
    return fields


def encode_metadata(fields: dict[str, str] | None) -> bytes:
    """Encode fields as the length byte plus the NUL-padded block, UTF-8.

    Nothing is escaped (the format has no escapes); a `';` inside a value becomes `' ;` so
    it cannot end the value early, NULs are dropped and lone surrogates become `?`. Values
    are cut (at a character boundary) so the block fits in 255 × 16 bytes; fields that no
    longer fit are left out. None or {} encode as a lone 0 byte.
    """
    if not fields:
        return _NO_METADATA
    body = b""
    for key, value in fields.items():
        clean = value.replace("\x00", "").replace("';", "' ;")
        room = _MAX_BLOCK - len(body) - len(key.encode()) - len("='';")
        if room < 0:
            break
        encoded = clean.encode("utf-8", "replace")  # a lone surrogate becomes "?"
        if len(encoded) > room:
            encoded = encoded[:room].decode("utf-8", "ignore").encode()
        body += key.encode() + b"='" + encoded + b"';"
    length = -(-len(body) // _BLOCK_UNIT)
    return bytes([length]) + body.ljust(length * _BLOCK_UNIT, b"\x00")


def interleave(data: bytes, offset: int, metaint: int, block: bytes) -> bytes:
    """Return what an ICY listener receives for `data`, a chunk of the plain audio stream
    starting at global byte `offset`: `block` (from `encode_metadata`) is inserted after
    every audio byte whose global position p satisfies (p + 1) % metaint == 0, i.e. at each
    boundary b with offset < b ≤ offset + len(data) and b % metaint == 0.

    The hub aligns every ICY listener's start to a multiple of `metaint`, so a listener's
    own byte count is congruent to the global offset and this one computation per chunk
    serves all ICY listeners.
    """
    if metaint <= 0:
        raise ValueError(f"metaint must be > 0, got {metaint}")
    view = memoryview(data)
    first = metaint - offset % metaint  # index in `data` of the first boundary
    if first > len(view):
        return bytes(data)
    parts: list[bytes | memoryview] = [view[:first]]
    for start in range(first, len(view), metaint):
        parts.append(block)
        parts.append(view[start : start + metaint])
    if (offset + len(view)) % metaint == 0:
        parts.append(block)
    return b"".join(parts)
