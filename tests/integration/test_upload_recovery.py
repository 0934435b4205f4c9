"""Uploads survive crashes and restarts: a transcode job that fails midway is retried to the
end, a job whose node died is finished by another node once its lease expires, and a clean
restart hands a running job back (backlog US-3.1; DESIGN "Reliability rules")."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from control.uploads.service import UPLOADS as UPLOADS_SERVICE
from control.uploads.transcode import TRANSCODE
from hls.vod import segment_to_hls
from mediaserver.app import POOL, STORE
from mediaserver.jobs import JOBS, Job
from tests.accounts import user_headers
from tests.audio import decode_duration, make_mp3
from tests.streams import fresh_database
from tests.uploads import hls_duration, job_row, ready_upload, upload_mp3, wait_processed


@pytest.fixture
async def database(make_database: Any) -> str:
    """A database of its own: no other test's node takes these jobs."""
    return await fresh_database(make_database)


async def test_a_transcode_that_crashes_midway_is_retried_to_the_end(
    make_client: Any, database: str
) -> None:
    node = await make_client(database_url=database, job_backoff_seconds=0)
    transcoder = node.app[UPLOADS_SERVICE].transcoder
    attempts: list[int] = []

    async def crashes_once(job: Job) -> None:
        attempts.append(job.attempts)
        if job.attempts == 1:  # write the segments, then die before recording the result
            row = await node.app[POOL].fetchrow(
                "SELECT source_key, hls_prefix FROM uploads WHERE upload_id = $1", job.subject_id
            )
            await segment_to_hls(node.app[STORE], row["source_key"], row["hls_prefix"])
            raise RuntimeError("worker crashed midway")
        await transcoder.run(job)

    node.app[JOBS].register(TRANSCODE, crashes_once, transcoder.failed)
    _, headers = await user_headers(node)
    data = make_mp3(30.0)
    body = await ready_upload(node, headers, data)
    assert attempts == [1, 2]
    job = await job_row(node, body["upload_id"])
    assert job == {
        "status": "done",
        "attempts": 2,
        "last_error": "RuntimeError: worker crashed midway",
    }
    source = await asyncio.to_thread(decode_duration, data)
    assert await hls_duration(body["hls_manifest_url"], headers) == pytest.approx(source, abs=0.1)


async def _stuck_node(
    make_client: Any, database: str, **settings: Any
) -> tuple[Any, asyncio.Event]:
    """A node whose transcode jobs hang once started (a node dying mid-job, frozen)."""
    node = await make_client(database_url=database, **settings)
    started = asyncio.Event()

    async def hangs(job: Job) -> None:
        started.set()
        await asyncio.Event().wait()

    node.app[JOBS].register(TRANSCODE, hangs)
    return node, started


async def test_a_job_whose_node_died_is_finished_by_another_after_its_lease(
    make_client: Any, database: str
) -> None:
    first, started = await _stuck_node(make_client, database, job_lease_seconds=1)
    _, headers = await user_headers(first)
    data = make_mp3(30.0)
    created = await upload_mp3(first, headers, data)
    await asyncio.wait_for(started.wait(), 10)
    first.app[POOL].terminate()  # the node loses the database: no more lease renewals
    second = await make_client(database_url=database, job_lease_seconds=1)
    began = time.monotonic()
    body = await wait_processed(second, headers, created["upload_id"])
    assert body["status"] == "ready"
    assert time.monotonic() - began < 10
    assert (await job_row(second, created["upload_id"]))["attempts"] == 2
    source = await asyncio.to_thread(decode_duration, data)
    assert await hls_duration(body["hls_manifest_url"], headers) == pytest.approx(source, abs=0.1)
    await first.close()


async def test_a_restart_mid_job_loses_nothing(make_client: Any, database: str) -> None:
    first, started = await _stuck_node(make_client, database)
    _, headers = await user_headers(first)
    created = await upload_mp3(first, headers, make_mp3(30.0))
    await asyncio.wait_for(started.wait(), 10)
    await first.close()  # a clean shutdown hands the running job back to the queue
    second = await make_client(database_url=database)
    body = await wait_processed(second, headers, created["upload_id"], deadline_s=10)
    assert body["status"] == "ready"
    # The interrupted attempt does not count against the job.
    assert (await job_row(second, created["upload_id"]))["attempts"] == 1
