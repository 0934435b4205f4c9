"""The start of an upload, checked while it streams in (sans-IO): is it MP3, and what do its
ID3 tags say. The whole file is checked later, by the transcode job (`probe_mp3`)."""

from __future__ import annotations

from hls.id3tags import leading_tags
from hls.vod import MIN_FRAMES, CorruptMp3, Mp3Validator

#: Leading bytes kept for the ID3v2 tag (title and artist; cover art may be cut off).
HEAD_LIMIT = 256 * 1024


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
        return leading_tags(bytes(self._head))
