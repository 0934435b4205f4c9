"""A real S3-protocol server for the tests: moto's standalone server, run once per session as
a subprocess on a free loopback port, with an empty bucket `BUCKET` (a pytest plugin listed
in `tests/conftest.py`)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiobotocore.session import AioSession, get_session

KEYS = {"access_key": "testing", "secret_key": "testing"}
BUCKET = "mediaserver-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("moto server did not start listening in time")


def s3_client(session: AioSession, endpoint: str) -> Any:
    """A plain aiobotocore S3 client of the moto server (`async with` it)."""
    return session.create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
    )


@pytest.fixture(scope="session")
def aio_session() -> AioSession:
    """One botocore session: its parsed S3 model is shared by every client (~5 ms each)."""
    return get_session()


@pytest.fixture(scope="session")
def s3_endpoint(aio_session: AioSession) -> Iterator[str]:
    """moto's S3 server on a free loopback port, with an empty bucket `BUCKET`."""
    pytest.importorskip("moto.server", reason="moto[server] provides the S3-protocol server")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, process, deadline_s=20)
        endpoint = f"http://127.0.0.1:{port}"

        async def create_bucket() -> None:
            async with s3_client(aio_session, endpoint) as client:
                await client.create_bucket(Bucket=BUCKET)

        asyncio.run(create_bucket())
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
