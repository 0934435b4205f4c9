"""The start of an upload, checked while it streams in (sans-IO): is it MP3, and what do its
ID3 tags say. The whole file is checked later, by the transcode job (`probe_mp3`)."""

from __future__ import annotations

import io

from mutagen import MutagenError
from mutagen.id3 import ID3

from hls.vod import MIN_FRAMES, CorruptMp3, Mp3Validator

#: Leading bytes kept for the ID3v2 tag (title and artist; cover art may be cut off).
HEAD_LIMIT = 256 * 1024
_ID3_HEADER = 10
_FOOTER_FLAG = 0x10  # id3.org ID3v2.4 §3.1 flag d


class UploadSniffer:
    """Feed the upload's chunks in order; `feed` raises `NotMp3` as soon as the data cannot
    be MP3 (`Mp3Validator`'s rule: no audio within 64 KiB after the tags). Parsing stops
    once the audio is confirmed, so a large file costs nothing more."""

    def __init__(self) -> None:
        self._validator = Mp3Validator()
        self._confirmed = False
        self._head = bytearray()

    def feed(self, chunk: bytes) -> None:
        if len(self._head) < HEAD_LIMIT:
            self._head += chunk[: HEAD_LIMIT - len(self._head)]
        if not self._confirmed:
            self._validator.feed(chunk)
            self._confirmed = self._validator.track.reader.frames >= MIN_FRAMES

    def finish(self) -> None:
        """End of the file. A file too short to confirm is judged whole: NotMp3 when it is
        not MP3; a damaged one is accepted and its transcode job says what is wrong."""
        if not self._confirmed:
            try:
                self._validator.finish()
            except CorruptMp3:
                pass

    def tags(self) -> tuple[str | None, str | None]:
        """Title (TIT2) and artist (TPE1) of a leading ID3v2 tag, when it has them."""
        head = bytes(self._head)
        if len(head) < _ID3_HEADER or head[:3] != b"ID3":
            return None, None
        declared = _syncsafe(head[6:10]) + _ID3_HEADER
        if declared > len(head):
            # Frames are read in order: shrink the tag to what was kept, so mutagen reads
            # the frames that fit (taggers write text frames before cover art).
            size = len(head) - _ID3_HEADER
            flags = head[5] & ~_FOOTER_FLAG
            head = head[:5] + bytes([flags]) + _to_syncsafe(size) + head[_ID3_HEADER:]
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


def _text(tags: ID3, frame_id: str) -> str | None:
    frame = tags.get(frame_id)
    texts = [str(t).strip("\x00 \t\r\n") for t in getattr(frame, "text", ())]
    return next((t for t in texts if t), None)
