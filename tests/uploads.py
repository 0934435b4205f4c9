"""Uploading audio the way a client does (multipart/form-data over HTTP) and waiting for it to
be processed — for the uploads tests and for any test that needs a ready upload."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from mediaserver.app import POOL
from tests.audio import decode_duration

UPLOADS = "/v1/uploads/audio"
PROCESSING_DEADLINE = 60.0  # seconds; a 3-minute file takes well under one


def mp3_form(
    data: bytes | AsyncIterator[bytes],
    filename: str = "song.mp3",
    content_type: str = "audio/mpeg",
    *,
    file_first: bool = True,
    **fields: str,
) -> aiohttp.MultipartWriter:
    """A form/multipart body with `data` as its `file` part and the text `fields`, the file
    before or after them. An async iterator is sent chunked, without a Content-Length."""
    writer = aiohttp.MultipartWriter("form-data")

    def add_file() -> None:
        # Bytes go in a BytesIO: aiohttp writes that in chunks (and warns about large bytes).
        body = io.BytesIO(data) if isinstance(data, bytes) else data
        part = writer.append(body, {"Content-Type": content_type})
        # As browsers send it (aiohttp's default would percent-encode the name).
        part.set_content_disposition(
            "form-data", quote_fields=False, name="file", filename=filename
        )

    if file_first:
        add_file()
    for name, value in fields.items():
        writer.append(value).set_content_disposition("form-data", name=name)
    if not file_first:
        add_file()
    return writer


async def post_upload(
    client: TestClient, headers: dict[str, str], data: bytes | AsyncIterator[bytes], **form: Any
) -> aiohttp.ClientResponse:
    return await client.post(UPLOADS, data=mp3_form(data, **form), headers=headers)


async def upload_mp3(
    client: TestClient, headers: dict[str, str], data: bytes, **form: Any
) -> dict[str, Any]:
    """Upload `data`; the 201 body."""
    response = await post_upload(client, headers, data, **form)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def wait_processed(
    client: TestClient,
    headers: dict[str, str],
    upload_id: str,
    deadline_s: float = PROCESSING_DEADLINE,
) -> dict[str, Any]:
    """Poll `GET /v1/uploads/audio/{id}` until it is no longer `processing`."""
    return await wait_done(client, headers, f"{UPLOADS}/{upload_id}", deadline_s)


async def wait_done(
    client: TestClient, headers: dict[str, str], path: str, deadline_s: float
) -> dict[str, Any]:
    """Poll `GET path` (an upload or a track) until its `status` is no longer
    `processing`; its body."""
    deadline = time.monotonic() + deadline_s
    while True:
        response = await client.get(path, headers=headers)
        assert response.status == 200, await response.text()
        body = dict(await response.json())
        if body["status"] != "processing":
            return body
        assert time.monotonic() < deadline, f"{path} still processing"
        await asyncio.sleep(0.05)


async def ready_upload(
    client: TestClient, headers: dict[str, str], data: bytes, **form: Any
) -> dict[str, Any]:
    """Upload `data` and wait until it is ready; its `GET` body."""
    created = await upload_mp3(client, headers, data, **form)
    body = await wait_processed(client, headers, created["upload_id"])
    assert body["status"] == "ready", body
    return body


async def hls_duration(url: str, headers: dict[str, str]) -> float:
    """Seconds of audio libavformat decodes from every segment of the HLS playlist at `url`,
    fetched over HTTP with the caller's token (as an authenticated player would)."""
    options = {"headers": f"Authorization: {headers['Authorization']}\r\n"}
    return await asyncio.to_thread(decode_duration, url, options=options)


async def job_row(node: TestClient, upload_id: str) -> dict[str, Any]:
    """The upload's transcode job: status, attempts, last_error."""
    row = await node.app[POOL].fetchrow(
        "SELECT status, attempts, last_error FROM jobs WHERE subject_id = $1", uuid.UUID(upload_id)
    )
    return dict(row)
