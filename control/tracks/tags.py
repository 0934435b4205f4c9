"""The tags of an audio file, read with mutagen: the defaults of a track's metadata (title,
artist, album, genre, year, BPM, key) and its embedded cover art. ID3 (MP3, WAV, AIFF),
Vorbis comments (FLAC, Ogg Vorbis, Ogg Opus) and MP4 atoms (M4A). Blocking: call it from a
worker thread. Values that break the catalog's rules are dropped or shortened, never
refused: the DJ can fix them in the form or later with PATCH."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mutagen
from mutagen.flac import Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Tags

_KEY = re.compile(r"^[A-G][#b]?m?$")
_YEAR = re.compile(r"(\d{4})")
_NUMBER = re.compile(r"^\s*(\d{2,3})(?:[.,]\d+)?\s*$")
# Where each format keeps what we read: ID3 frames, Vorbis comment names, MP4 atoms.
_ID3 = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "genre": "TCON", "year": "TDRC",
        "bpm": "TBPM", "key": "TKEY"}  # fmt: skip
_VORBIS = {"title": "title", "artist": "artist", "album": "album", "genre": "genre",
           "year": "date", "bpm": "bpm", "key": "initialkey"}  # fmt: skip
_MP4 = {"title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "genre": "\xa9gen",
        "year": "\xa9day", "bpm": "tmpo", "key": "----:com.apple.iTunes:initialkey"}  # fmt: skip
_LIMITS = {"title": 200, "artist": 100, "album": 200, "genre": 50}


@dataclass(frozen=True, slots=True)
class Tags:
    """What the file's tags say (None: nothing usable)."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    year: int | None = None
    bpm: int | None = None
    key: str | None = None
    cover: bytes | None = None


def read_tags(path: str | Path) -> Tags:
    """The file's tags; empty `Tags` when it has none or mutagen cannot read them."""
    try:
        audio = mutagen.File(str(path))
    except (mutagen.MutagenError, ValueError, OSError, EOFError):
        return Tags()
    if audio is None or audio.tags is None:
        return Tags(cover=_flac_picture(audio))
    tags = audio.tags
    if isinstance(tags, ID3):
        raw = {name: _id3_text(tags, frame) for name, frame in _ID3.items()}
        pictures = tags.getall("APIC")
        cover = bytes(pictures[0].data) if pictures else None
    elif isinstance(tags, MP4Tags):
        raw = {name: _mp4_text(tags, atom) for name, atom in _MP4.items()}
        covers = tags.get("covr") or []
        cover = bytes(covers[0]) if covers else None
    else:  # Vorbis comments
        raw = {name: _first(tags.get(field)) for name, field in _VORBIS.items()}
        raw["key"] = raw["key"] or _first(tags.get("key"))
        cover = _flac_picture(audio) or _ogg_picture(tags)
    return _clean(raw, cover)


def _clean(raw: dict[str, str | None], cover: bytes | None) -> Tags:
    text = {name: _shorten(raw.get(name), limit) for name, limit in _LIMITS.items()}
    year_match = _YEAR.search(raw.get("year") or "")
    bpm_match = _NUMBER.match(raw.get("bpm") or "")
    bpm = int(bpm_match.group(1)) if bpm_match else None
    key = (raw.get("key") or "").strip()
    return Tags(
        title=text["title"],
        artist=text["artist"],
        album=text["album"],
        genre=text["genre"],
        year=int(year_match.group(1)) if year_match else None,
        bpm=bpm if bpm is not None and 40 <= bpm <= 300 else None,
        key=key if _KEY.match(key) else None,
        cover=cover,
    )


def _shorten(value: str | None, limit: int) -> str | None:
    cleaned = "".join(c for c in (value or "") if c.isprintable()).strip()
    return cleaned[:limit].strip() or None


def _first(values: Any) -> str | None:
    if not values:
        return None
    return str(values[0])


def _id3_text(tags: ID3, frame: str) -> str | None:
    found = tags.getall(frame)
    if not found or not getattr(found[0], "text", None):
        return None
    return str(found[0].text[0])


def _mp4_text(tags: MP4Tags, atom: str) -> str | None:
    value = _first(tags.get(atom))
    if isinstance(value, str) and value.startswith("b'"):  # freeform atoms hold bytes
        raw = tags.get(atom)
        return bytes(raw[0]).decode("utf-8", "replace") if raw else None
    return value


def _flac_picture(audio: Any) -> bytes | None:
    pictures = getattr(audio, "pictures", None)
    return bytes(pictures[0].data) if pictures else None


def _ogg_picture(tags: Any) -> bytes | None:
    encoded = _first(tags.get("metadata_block_picture"))
    if encoded is None:
        return None
    try:
        return bytes(Picture(base64.b64decode(encoded)).data)
    except (ValueError, mutagen.MutagenError):
        return None
