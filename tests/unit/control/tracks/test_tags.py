"""`control.tracks.tags` on real files made by ffmpeg and tagged with mutagen: what a DJ's
tagging software writes becomes the track's defaults; what breaks the catalog's rules is
dropped, never an error."""

from __future__ import annotations

import base64
from pathlib import Path

import mutagen
import pytest
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, TBPM, TCON, TDRC, TIT2, TKEY, TPE1
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm
from mutagen.oggvorbis import OggVorbis

from control.tracks.tags import Tags, read_tags
from tests.tracks import make_audio, make_png


def write(tmp_path: Path, kind: str, suffix: str) -> Path:
    path = tmp_path / f"t{suffix}"
    path.write_bytes(make_audio(kind, 1))
    return path


def test_id3_in_mp3_and_wav(tmp_path: Path) -> None:
    for kind, suffix in (("mp3", ".mp3"), ("wav", ".wav"), ("aiff", ".aiff")):
        path = write(tmp_path, kind, suffix)
        if kind == "mp3":
            tags = ID3()
        else:
            audio = mutagen.File(path)
            audio.add_tags()
            tags = audio.tags
        tags.add(TIT2(encoding=3, text=["Night Drive"]))
        tags.add(TPE1(encoding=3, text=["DJ Nova"]))
        tags.add(TCON(encoding=3, text=["Deep House"]))
        tags.add(TDRC(encoding=3, text=["2019-05-01"]))
        tags.add(TBPM(encoding=3, text=["122.5"]))
        tags.add(TKEY(encoding=3, text=["Gm"]))
        tags.add(APIC(encoding=3, mime="image/png", type=3, data=make_png()))
        tags.save(path)
        read = read_tags(path)
        assert (read.title, read.artist, read.genre, read.year, read.bpm, read.key) == (
            "Night Drive",
            "DJ Nova",
            "Deep House",
            2019,
            122,
            "Gm",
        ), kind
        assert read.cover == make_png()


def test_vorbis_comments_and_pictures(tmp_path: Path) -> None:
    flac_path = write(tmp_path, "flac", ".flac")
    flac = FLAC(flac_path)
    flac["title"], flac["artist"], flac["bpm"], flac["initialkey"] = "A", "B", "174", "F#m"
    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/png", make_png()
    flac.add_picture(picture)
    flac.save()
    read = read_tags(flac_path)
    assert (read.title, read.artist, read.bpm, read.key, read.cover) == (
        "A", "B", 174, "F#m", make_png(),
    )  # fmt: skip
    ogg_path = write(tmp_path, "vorbis", ".ogg")
    ogg = OggVorbis(ogg_path)
    ogg["title"], ogg["date"] = "Ogg Title", "1999"
    ogg["metadata_block_picture"] = [base64.b64encode(picture.write()).decode()]
    ogg.save()
    read = read_tags(ogg_path)
    assert (read.title, read.year, read.cover) == ("Ogg Title", 1999, make_png())


def test_mp4_atoms(tmp_path: Path) -> None:
    path = write(tmp_path, "m4a", ".m4a")
    mp4 = MP4(path)
    mp4["\xa9nam"], mp4["\xa9ART"], mp4["tmpo"] = ["M4A Title"], ["M4A Artist"], [128]
    mp4["----:com.apple.iTunes:initialkey"] = [MP4FreeForm(b"C#")]
    mp4["covr"] = [MP4Cover(make_png(), imageformat=MP4Cover.FORMAT_PNG)]
    mp4.save()
    read = read_tags(path)
    assert (read.title, read.artist, read.bpm, read.key, read.cover) == (
        "M4A Title", "M4A Artist", 128, "C#", make_png(),
    )  # fmt: skip


def test_values_outside_the_rules_are_dropped_or_cut(tmp_path: Path) -> None:
    path = write(tmp_path, "mp3", ".mp3")
    tags = ID3()
    tags.add(TIT2(encoding=3, text=["x" * 500]))
    tags.add(TPE1(encoding=3, text=["  \x00 "]))
    tags.add(TBPM(encoding=3, text=["999"]))
    tags.add(TKEY(encoding=3, text=["8A"]))  # Camelot notation: not the spec's key
    tags.save(path)
    read = read_tags(path)
    assert read.title == "x" * 200
    assert (read.artist, read.bpm, read.key) == (None, None, None)


@pytest.mark.parametrize("what", ["empty", "png", "untagged wav"])
def test_no_tags_is_empty(tmp_path: Path, what: str) -> None:
    data = {"empty": b"", "png": make_png()}.get(what) or make_audio("wav", 1)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert read_tags(path) == Tags()
