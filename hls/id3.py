"""ID3v2.4 tags for HLS timed metadata (sans-IO).

References: id3.org "ID3 tag version 2.4.0 - Main Structure" (§3.1 header, §4 frames,
§6.2 synchsafe integers) and "Native Frames" §4.2 (text information frames, TIT2).
"""

from __future__ import annotations

_HEADER = b"ID3\x04\x00"  # "ID3", version 2.4, revision 0
_NO_FLAGS = 0
_UTF8 = b"\x03"  # text encoding byte, Native Frames §4
_MAX_SYNCHSAFE = (1 << 28) - 1


def _synchsafe(size: int) -> bytes:
    """A 28-bit size as four 7-bit bytes (Main Structure §6.2)."""
    if not 0 <= size <= _MAX_SYNCHSAFE:
        raise ValueError(f"ID3v2 size {size} does not fit a synchsafe integer")
    return bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))


def id3_text_frame(frame_id: str, text: str) -> bytes:
    """One text information frame (`T...`), UTF-8. NULs would split it into several strings."""
    if len(frame_id) != 4 or not frame_id.startswith("T") or not frame_id.isalnum():
        raise ValueError(f"not an ID3v2.4 text frame id: {frame_id!r}")
    body = _UTF8 + text.replace("\x00", "").encode("utf-8")
    return frame_id.encode("ascii") + _synchsafe(len(body)) + b"\x00\x00" + body


def id3_tag(*frames: bytes) -> bytes:
    """A complete ID3v2.4 tag (no extended header, no padding) holding `frames`."""
    body = b"".join(frames)
    return _HEADER + bytes([_NO_FLAGS]) + _synchsafe(len(body)) + body


def id3_title_tag(title: str) -> bytes:
    """The now-playing title as an ID3v2.4 tag with one TIT2 frame, for HLS timed metadata."""
    return id3_tag(id3_text_frame("TIT2", title))
