"""`UploadSniffer` on real MP3 bytes: the first chunks of an upload decide MP3 or not (in any
chunking), and the leading ID3v2 tag gives the title and artist, even when cover art makes
the tag larger than what is kept."""

from __future__ import annotations

import io

import pytest
from mutagen.id3 import APIC, ID3, TIT2, TPE1

from control.uploads.sniff import HEAD_LIMIT, UploadSniffer
from hls.vod import SYNC_WINDOW, NotMp3
from tests.audio import make_mp3


def sniff(data: bytes, chunk: int) -> UploadSniffer:
    sniffer = UploadSniffer()
    for start in range(0, len(data), chunk):
        sniffer.feed(data[start : start + chunk])
    sniffer.finish()
    return sniffer


def tagged(audio: bytes, *frames: object) -> bytes:
    """`audio` behind an ID3v2.4 tag holding `frames`, in that order."""
    tag = ID3()
    for frame in frames:
        tag.add(frame)
    out = io.BytesIO()
    tag.save(out, v2_version=4)
    return out.getvalue() + audio


@pytest.mark.parametrize("chunk", [1, 7, 4096, 65_536, 1 << 20])
def test_an_mp3_passes_in_any_chunking_and_gives_its_tags(chunk: int) -> None:
    data = make_mp3(2.0, id3_title="Opening Track")
    assert sniff(data, chunk).tags() == ("Opening Track", None)


def test_an_mp3_without_tags_has_none() -> None:
    assert sniff(make_mp3(2.0), 65_536).tags() == (None, None)


def test_text_frames_are_read_from_a_tag_larger_than_what_is_kept() -> None:
    cover = APIC(encoding=3, mime="image/jpeg", type=3, desc="cover", data=b"\xff" * HEAD_LIMIT)
    data = tagged(
        make_mp3(2.0),
        TIT2(encoding=3, text="Sunset"),
        TPE1(encoding=3, text="DJ Example"),
        cover,
    )
    assert len(data) - len(make_mp3(2.0)) > HEAD_LIMIT  # the tag alone
    assert sniff(data, 65_536).tags() == ("Sunset", "DJ Example")


def test_something_else_is_refused_within_the_sync_window() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 1024
    sniffer = UploadSniffer()
    fed = 0
    with pytest.raises(NotMp3) as refused:
        for start in range(0, len(png), 1024):
            sniffer.feed(png[start : start + 1024])
            fed += 1024
    assert fed <= SYNC_WINDOW + 8192  # decided early: the rest of the upload is never read
    assert refused.value.detected == "a PNG image"


@pytest.mark.parametrize("data", [b"", b"hello world", b"\x89PNG\r\n\x1a\n"])
def test_a_short_file_that_is_not_mp3_is_refused_at_its_end(data: bytes) -> None:
    with pytest.raises(NotMp3):
        sniff(data, 4096)


def test_a_cut_off_mp3_is_left_to_the_transcode_job() -> None:
    data = make_mp3(2.0)
    sniff(data[:2000], 4096)  # the Info frame and a few audio frames: not refused here
