"""Leftovers of interrupted uploads do not stay in the store for ever (issue 11): what a
node killed mid-upload (`.tmp-…` partial objects) and refused or aborted uploads (empty
directories) leave is swept when a node starts, once older than STORE_ORPHAN_AGE_SECONDS;
uploads that made it stay."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

from mediaserver.config import SETTINGS
from tests.accounts import user_headers
from tests.audio import make_mp3
from tests.uploads import UPLOADS, post_upload, upload_mp3


def store_root(node: Any) -> Path:
    return Path(node.app[SETTINGS].data_dir).resolve() / "objects"


def entries(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


async def test_a_starting_node_sweeps_old_leftovers_and_keeps_uploads(make_client):
    node = await make_client(store_sweep_interval_seconds=0)
    _, headers = await user_headers(node, "dj")
    kept = await upload_mp3(node, headers, make_mp3(1.0))
    refused = await post_upload(node, headers, b"not audio at all" * 100)
    assert refused.status == 400
    # A client that walks away mid-upload.
    _, writer = await asyncio.open_connection(node.host, node.port)
    writer.write(
        (
            f"POST {UPLOADS} HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n"
            "Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 10000000\r\n\r\n"
            '--B\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
            "Content-Type: audio/mpeg\r\n\r\n"
        ).encode()
        + make_mp3(3.0)
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.transport.abort()
    closed = 'http_requests_total{code="499",endpoint="/v1/uploads/audio",method="POST"} 1.0'
    deadline = time.monotonic() + 10
    while closed not in await (await node.get("/metrics")).text():
        assert time.monotonic() < deadline, "the aborted upload was never counted"
        await asyncio.sleep(0.05)
    root = store_root(node)
    # What `kill -9` mid-upload leaves: the partial object, never renamed into place.
    killed = root / "uploads" / "audio" / "killed-user" / "killed-upload" / ".tmp-0badc0ffee"
    killed.parent.mkdir(parents=True)
    killed.write_bytes(b"\xff\xfb" * 50_000)
    before = entries(root)
    # Age everything by a day, as if the node had been down that long.
    day_ago = time.time() - 86_400
    for path in root.rglob("*"):
        with contextlib.suppress(FileNotFoundError):  # a job's own temp file, gone since
            os.utime(path, (day_ago, day_ago))

    restarted = await make_client()  # a node starting on the same store sweeps it

    def empty_dirs() -> list[Path]:
        return [p for p in root.rglob("*") if p.is_dir() and not any(p.iterdir())]

    # The sweep runs in a worker thread: wait for the whole of it, not its first removal.
    deadline = time.monotonic() + 10
    while (killed.parent.exists() or empty_dirs()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    after = entries(root)
    print("\nswept:", sorted(before - after))
    assert not killed.exists() and not killed.parent.exists()
    assert not empty_dirs()
    assert not [p for p in root.rglob(".tmp-*")]
    assert after < before
    response = await restarted.get(f"{UPLOADS}/{kept['upload_id']}", headers=headers)
    assert response.status == 200
    assert any(kept["upload_id"] in entry for entry in after)
