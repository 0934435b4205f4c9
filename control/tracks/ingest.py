"""Receiving `POST /v1/tracks`: the `audio` part streamed into the object store (and a local
copy, to parse it), recognised by parsing the audio (never by its name or Content-Type) and
held to the settings' limits; the `metadata` JSON part; the optional `artwork` image.

Objects of a track live under its upload's folder (`uploads/audio/<owner>/<track>/`):
`source` (the file as uploaded) and `artwork.upload` (the uploaded image) here; the
processing job (`control.tracks.process`) adds the renditions, playlists and thumbnails.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from control.api import parse_model
from control.inputs import check_tree
from control.tracks.schemas import TrackFields
from control.tracks.tags import Tags, read_tags
from control.uploads.form import FileField, FormField
from hls.ladder import CorruptAudio, NotAudio, NotImage, SourceInfo, make_artwork, probe_audio
from mediaserver.config import Settings
from mediaserver.errors import InvalidInput
from mediaserver.storage import ObjectStore

AUDIO_FIELD = "audio"
METADATA_FIELD = "metadata"
ARTWORK_FIELD = "artwork"
SOURCE_NAME = "source"
ARTWORK_UPLOAD = "artwork.upload"
METADATA_LIMIT = 64 * 1024
ACCEPTED = "MP3, WAV, FLAC, OGG (Vorbis or Opus), M4A/AAC or AIFF"
NO_AUDIO = f"No audio: send the file ({ACCEPTED}) in a form field named '{AUDIO_FIELD}'."
MIME = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "aiff": "audio/aiff",
}


@dataclass(frozen=True, slots=True)
class Audio:
    """The uploaded audio: as the client named it, its size, what parsing found."""

    filename: str | None
    size: int
    info: SourceInfo
    tags: Tags


@dataclass(frozen=True, slots=True)
class Received:
    metadata: TrackFields
    audio: Audio
    has_artwork: bool


def file_limits(settings: Settings, audio_max: int | None = None) -> dict[str, int]:
    """The file parts of the form and the most each may hold (`audio_max`: the caller's
    plan's effective limit, else `TRACK_MAX_BYTES`)."""
    return {
        AUDIO_FIELD: settings.track_max_bytes if audio_max is None else audio_max,
        ARTWORK_FIELD: settings.track_artwork_max_bytes,
        METADATA_FIELD: METADATA_LIMIT,
    }


class Ingest:
    """Reads one track upload's form into the store (see the module)."""

    def __init__(self, store: ObjectStore, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    async def receive(
        self, fields: AsyncIterator[FormField], folder: str, tmp: Path, max_seconds: float
    ) -> Received:
        """The form's parts; the audio at most `max_seconds` long (the plan's limit)."""
        metadata: TrackFields | None = None
        audio: Audio | None = None
        artwork = False
        async for field in fields:
            if field.name == METADATA_FIELD:
                if metadata is not None:
                    raise InvalidInput("Send one 'metadata' part.")
                text = field.value if not isinstance(field, FileField) else await _read(field)
                # Checked at once: a form with bad metadata first is refused before its audio.
                metadata = parse_model(TrackFields, _json_object(text), "body")
            elif field.name == AUDIO_FIELD and isinstance(field, FileField):
                if audio is not None:
                    raise InvalidInput("Send one audio file per track.")
                local = tmp / SOURCE_NAME
                audio = await self._audio(field, folder + SOURCE_NAME, local, max_seconds)
            elif field.name == ARTWORK_FIELD and isinstance(field, FileField):
                if artwork:
                    raise InvalidInput("Send one 'artwork' image.")
                await self._artwork(await _read(field, binary=True), folder + ARTWORK_UPLOAD)
                artwork = True
            else:
                raise InvalidInput(
                    f"Unexpected form field '{field.name}': send 'metadata', 'audio' and "
                    "optionally 'artwork'."
                )
        if audio is None:
            raise InvalidInput(NO_AUDIO)
        return Received(metadata or TrackFields(), audio, artwork)

    async def _audio(self, field: FileField, key: str, local: Path, max_seconds: float) -> Audio:
        handle = await asyncio.to_thread(local.open, "wb")
        try:
            info = await self._store.put(
                key, _teed(field.chunks, handle), "application/octet-stream"
            )
        finally:
            await asyncio.to_thread(handle.close)
        if info.size == 0:
            raise InvalidInput(f"The audio file is empty: send {ACCEPTED}.")
        source, tags = await asyncio.to_thread(_probe, local)
        self._check_limits(source, max_seconds)
        return Audio(field.filename, info.size, source, tags)

    def _check_limits(self, info: SourceInfo, max_seconds: float) -> None:
        settings = self._settings
        if info.duration_seconds > max_seconds:
            raise InvalidInput(
                f"The audio is {info.duration_seconds / 60:.1f} minutes long: tracks may last "
                f"at most {max_seconds / 60:g} minutes."
            )
        if info.sample_rate < settings.track_min_sample_rate:
            raise InvalidInput(
                f"The audio's sample rate is {info.sample_rate} Hz: at least "
                f"{settings.track_min_sample_rate} Hz is needed."
            )
        kbps = info.bitrate_kbps
        if info.format == "mp3" and kbps is not None and kbps < settings.track_min_mp3_kbps:
            raise InvalidInput(
                f"The MP3 is encoded at {kbps} kbps: at least "
                f"{settings.track_min_mp3_kbps} kbps is needed."
            )

    async def _artwork(self, image: bytes, key: str) -> None:
        try:
            await asyncio.to_thread(make_artwork, image)
        except NotImage:
            raise InvalidInput("The artwork is not an image: send a JPEG or PNG.") from None
        await self._store.put_bytes(key, image, "application/octet-stream")


def _probe(path: Path) -> tuple[SourceInfo, Tags]:
    """What the audio is (400 naming what was found otherwise) and what its tags say."""
    try:
        info = probe_audio(path)
    except NotAudio as exc:
        found = f" It looks like {exc.detected}." if exc.detected else ""
        raise InvalidInput(
            f"Unsupported file type: send {ACCEPTED}.{found}",
            details=[exc.message],
        ) from None
    except CorruptAudio as exc:
        raise InvalidInput(f"The audio cannot be used: {exc.message}") from None
    return info, read_tags(path)


async def _teed(chunks: AsyncIterator[bytes], handle: BinaryIO) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        await asyncio.to_thread(handle.write, chunk)
        yield chunk


async def _read(field: FileField, *, binary: bool = False) -> Any:
    data = bytearray()
    async for chunk in field.chunks:
        data += chunk
    if binary:
        return bytes(data)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise InvalidInput(f"Form field '{field.name}' must be UTF-8 text.") from None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"Form field 'metadata' is not valid JSON: {exc.msg}.") from None
    if not isinstance(value, dict):
        raise InvalidInput("Form field 'metadata' must be a JSON object.")
    check_tree(value)  # no NUL or unpaired surrogate reaches the database
    return value
