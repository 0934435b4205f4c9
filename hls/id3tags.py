"""Title and artist of the ID3v2 tag an MP3 file starts with, read from its first bytes
(sans-IO: the upload sniffer and the transcode job hand in what they have read)."""

from __future__ import annotations

import io
from typing import Any

from mutagen import MutagenError
from mutagen.id3 import ID3

_ID3_HEADER = 10
_FOOTER_FLAG = 0x10  # id3.org ID3v2.4 §3.1 flag d


def leading_tags(head: bytes) -> tuple[str | None, str | None]:
    """Title (TIT2) and artist (TPE1) of the ID3v2 tag that `head`, a file's first bytes,
    starts with. A tag longer than `head` is cut to what it holds: frames come in order,
    and taggers write text frames before cover art."""
    if len(head) < _ID3_HEADER or head[:3] != b"ID3":
        return None, None
    declared = _ID3_HEADER + _syncsafe(head[6:10])
    if declared > len(head):
        flags = head[5] & ~_FOOTER_FLAG
        head = head[:5] + bytes([flags]) + _to_syncsafe(len(head) - _ID3_HEADER) + head[10:]
    try:
        tags = ID3(io.BytesIO(head))
    except (MutagenError, ValueError, EOFError):
        return None, None
    return _text(tags, "TIT2"), _text(tags, "TPE1")


def _syncsafe(data: bytes) -> int:
    """id3.org ID3v2.4 §6.2: four bytes of 7 bits each."""
    value = 0
    for byte in data:
        value = value << 7 | (byte & 0x7F)
    return value


def _to_syncsafe(value: int) -> bytes:
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def _text(tags: Any, frame_id: str) -> str | None:  # mutagen is untyped
    frame = tags.get(frame_id) if tags is not None else None
    texts = [str(t).strip("\x00 \t\r\n") for t in getattr(frame, "text", ())]
    return next((t for t in texts if t), None)
