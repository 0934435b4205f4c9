"""Tracks the way a DJ uploads them: real audio files made by Debian's `ffmpeg` in every
accepted format (10 s tones), posted as multipart/form-data, polled until processed."""

from __future__ import annotations

import functools
import io
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.uploads import wait_done

TRACKS = "/v1/tracks"
PROCESSING_DEADLINE = 120.0  # seconds; the 2-core test machine is shared
SECONDS = 10

#: name → (file suffix, ffmpeg output options)
FORMATS: dict[str, tuple[str, list[str]]] = {
    "mp3": (".mp3", ["-c:a", "libmp3lame", "-b:a", "192k"]),
    "wav": (".wav", ["-c:a", "pcm_s16le"]),
    "flac": (".flac", ["-c:a", "flac"]),
    "vorbis": (".ogg", ["-c:a", "libvorbis"]),
    "opus": (".opus", ["-c:a", "libopus", "-f", "ogg"]),
    "m4a": (".m4a", ["-c:a", "aac", "-b:a", "128k"]),
    "aiff": (".aiff", ["-c:a", "pcm_s16be"]),
}


def need_ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("ffmpeg is not installed (apt-get install -y ffmpeg)")
    return path


@functools.lru_cache(maxsize=32)
def make_audio(
    kind: str,
    seconds: float = SECONDS,
    *,
    rate: int = 44_100,
    cover: bool = False,
    extra: tuple[str, ...] = (),
) -> bytes:
    """A stereo sine tone in `kind` (a `FORMATS` key), made by ffmpeg; `cover` embeds a PNG
    cover (MP3, M4A), `extra` adds output options (e.g. `-metadata title=…`)."""
    ffmpeg = need_ffmpeg()
    suffix, options = FORMATS[kind]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"out{suffix}"
        args = [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                f"sine=frequency=440:duration={seconds}:sample_rate={rate}"]  # fmt: skip
        if cover:
            (Path(tmp) / "c.png").write_bytes(make_png())
            args += ["-i", str(Path(tmp) / "c.png"), "-map", "0:a", "-map", "1:v", "-c:v", "png",
                     "-disposition:v", "attached_pic"]  # fmt: skip
        args += ["-ac", "2", *options, *extra, str(out)]
        subprocess.run(args, check=True, capture_output=True)
        return out.read_bytes()


@functools.lru_cache(maxsize=4)
def make_png(color: str = "red", size: int = 64) -> bytes:
    ffmpeg = need_ffmpeg()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "c.png"
        subprocess.run(
            [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i",
             f"color={color}:s={size}x{size}", "-frames:v", "1", str(out)],
            check=True, capture_output=True,
        )  # fmt: skip
        return out.read_bytes()


def track_form(
    audio: bytes | None,
    metadata: dict[str, Any] | str | None = None,
    *,
    filename: str = "track.bin",
    artwork: bytes | None = None,
) -> aiohttp.MultipartWriter:
    """The form of `POST /v1/tracks`, as curl -F sends it."""
    writer = aiohttp.MultipartWriter("form-data")
    if metadata is not None:
        text = metadata if isinstance(metadata, str) else json.dumps(metadata)
        writer.append(text).set_content_disposition("form-data", name="metadata")
    if audio is not None:
        part = writer.append(io.BytesIO(audio), {"Content-Type": "application/octet-stream"})
        part.set_content_disposition(
            "form-data", quote_fields=False, name="audio", filename=filename
        )
    if artwork is not None:
        part = writer.append(io.BytesIO(artwork), {"Content-Type": "image/png"})
        part.set_content_disposition(
            "form-data", quote_fields=False, name="artwork", filename="cover.png"
        )
    return writer


async def post_track(
    client: TestClient, headers: dict[str, str], audio: bytes | None, **form: Any
) -> aiohttp.ClientResponse:
    return await client.post(TRACKS, data=track_form(audio, **form), headers=headers)


async def create_track(
    client: TestClient, headers: dict[str, str], audio: bytes, **form: Any
) -> dict[str, Any]:
    response = await post_track(client, headers, audio, **form)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def wait_track(client: TestClient, headers: dict[str, str], track_id: str) -> dict[str, Any]:
    """Poll `GET /v1/tracks/{id}` until it is no longer `processing`."""
    return await wait_done(client, headers, f"{TRACKS}/{track_id}", PROCESSING_DEADLINE)


async def ready_track(
    client: TestClient, headers: dict[str, str], audio: bytes, **form: Any
) -> dict[str, Any]:
    created = await create_track(client, headers, audio, **form)
    body = await wait_track(client, headers, created["track_id"])
    assert body["status"] == "ready", body
    return body
