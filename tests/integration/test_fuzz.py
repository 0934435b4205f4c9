"""The fuzzer's verdict (issue 11, "Hardening, measured"): schemathesis, from PyPI, drives a
running test node from the node's own OpenAPI document (`/openapi.json`) with positive and
negative data, signed in as an admin, on a fixed budget (`MAX_EXAMPLES` cases per operation,
a fixed seed, no example database: the same cases every run). No response may be a 5xx,
have a status code its operation does not document, or a body that does not match the
documented schema.

The node runs in the test's event loop; schemathesis runs as its own process (`st`, its
command line), so the loop keeps serving while it sends."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from tests.accounts import make_admin

MAX_EXAMPLES = 6
SEED = 20261207
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
#: Operations outside the fuzz: the relay's heartbeat needs the relay service token, the
#: listener routes and the server-sent-event feeds stream until the client leaves (their
#: contract has its own tests; schemathesis checks each SSE event's `data` against the
#: response schema, which describes the feed, not one event),
#: and deleting the fuzzer's own account would leave it nothing but 401s to test.
EXCLUDED = (
    "--exclude-path-regex",
    r"(/heartbeat$|/live\.mp3$|/stream\.mp3$|/media\.mp3$|/events$)",
    "--exclude-operation-id",
    "users_delete_me",
)


@pytest.mark.timeout(180)
async def test_fuzzing_from_the_document_finds_nothing(make_client, tmp_path: Path):
    st = Path(sys.executable).with_name("st")
    assert st.exists(), "schemathesis is part of the test extra: pip install -e '.[test]'"
    client = await make_client(rate_limit_enabled=False)
    admin = await make_admin(client)
    base = f"http://{client.host}:{client.port}"
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        str(st),
        "run",
        f"{base}/openapi.json",
        "--url",
        base,
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
        "--generation-allow-x00",
        "true",
        "--header",
        f"Authorization: Bearer {admin['access_token']}",
        *EXCLUDED,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")},
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    seconds = time.monotonic() - started
    print(text[-20000:], f"\nfuzzing took {seconds:.1f} s")
    assert process.returncode == 0, text[-20000:]
    assert " generated, " in text and "0 generated" not in text  # it did send requests
