"""How long an MP3 plays, estimated from its first bytes and its size — for the
`itunes:duration` of external episodes, whose media we never download whole. Sans-IO.

- A Xing/Info (LAME) or VBRI header frame that counts the frames gives the exact length:
  frames × samples per frame ÷ sample rate (what libavformat does).
- Otherwise the file is taken as constant bitrate: audio bytes (after the ID3v2 tag, and the
  Info frame if any) ÷ the first frame's byte rate.

The window must start at a frame boundary or at the start of the file (ID3v2 tags there are
skipped by `Mp3FrameReader`); a tag longer than the window is reported by `id3v2_end`, so
the caller can look again after it.
"""

from __future__ import annotations

from relay.mp3 import Mp3FrameReader

#: Bytes fetched to find the first frames (an ID3v2 tag with cover art may need a second look).
WINDOW = 64 * 1024
_ID3V2_HEADER = 10


def estimate_duration(window: bytes, size: int, offset: int = 0) -> float | None:
    """Seconds of audio in a file of `size` bytes whose bytes `offset…` are `window`;
    None when the window holds no MPEG audio frames."""
    frames = Mp3FrameReader().feed(window)
    if not frames:
        return None
    first = frames[0]
    header = first.header
    counted = first.announced_frames  # a Xing/Info or VBRI header frame's count
    if counted:
        return counted * header.samples_per_frame / header.sample_rate
    audio_start = offset + window.find(first.data)
    if first.is_info_frame:  # an Info frame without a frame count carries no audio
        audio_start += header.frame_length
    audio_bytes = size - audio_start
    if audio_bytes <= 0:
        return None
    return audio_bytes * 8 / (header.bitrate_kbps * 1000)


def id3v2_end(head: bytes) -> int | None:
    """Where the audio starts when `head` (the file's first bytes) opens with an ID3v2 tag:
    the tag's total size (id3.org ID3v2.4 §3.1: a syncsafe size after 6 header bytes, plus a
    10-byte footer when flag 0x10 is set); None when it does not start with one."""
    if len(head) < _ID3V2_HEADER or head[:3] != b"ID3" or head[3] not in (2, 3, 4):
        return None
    size = 0
    for byte in head[6:10]:
        if byte & 0x80:
            return None
        size = size << 7 | byte
    footer = _ID3V2_HEADER if head[5] & 0x10 else 0
    return _ID3V2_HEADER + size + footer
